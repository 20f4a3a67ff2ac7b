// What a running stage reports to: a ProgressSink plus checkpoint records.
#pragma once

#include "bert/v1/job.pb.h"
#include "common/progress_sink.h"

namespace bert::agent {

// Implementations are thread-safe, like every ProgressSink.
class StageReporter : public ProgressSink {
 public:
  // A checkpoint the stage wrote (pre-training), already complete on disk.
  virtual void Checkpoint(const v1::CheckpointRecord& record) = 0;
  // True once the controller paused the job (PauseJob): pre-training then
  // writes a checkpoint at the step reached and stops (PAUSED_BY_USER).
  virtual bool PauseRequested() const { return false; }
};

// Passes everything to `next` (which must outlive it); decorators override
// what they add to.
class ForwardingReporter : public StageReporter {
 public:
  explicit ForwardingReporter(StageReporter& next) : next_(next) {}
  void Progress(int64_t done, int64_t total, std::string_view unit) override {
    next_.Progress(done, total, unit);
  }
  void Metric(std::string_view name, double value, int64_t step) override {
    next_.Metric(name, value, step);
  }
  void Log(std::string_view level, std::string_view message) override { next_.Log(level, message); }
  bool Cancelled() const override { return next_.Cancelled(); }
  void Checkpoint(const v1::CheckpointRecord& record) override { next_.Checkpoint(record); }
  bool PauseRequested() const override { return next_.PauseRequested(); }

 protected:
  StageReporter& next_;
};

}  // namespace bert::agent
