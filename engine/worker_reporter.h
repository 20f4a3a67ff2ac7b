// WorkerReporter: bert-worker's JSON-line reports on stdout
// (docs/worker-protocol.md), one object per line, flushed after each; and, when
// built with the metrics library, the same scalars as TensorBoard events.
// Thread-safe: the training thread and the checkpoint writer both report.
#pragma once

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "engine/trainer.h"

namespace bert::metrics {
class TensorBoardWriter;
}

namespace bert::engine {

class WorkerReporter final : public TrainingObserver {
 public:
  // `cancelled` is set by the SIGTERM handler, `paused` (may be null) by the
  // SIGUSR1 handler; `out` is stdout in the worker.
  WorkerReporter(std::FILE* out, const std::atomic<bool>* cancelled,
                 const std::atomic<bool>* paused = nullptr);
  ~WorkerReporter() override;

  // Also writes scalars as TensorBoard events under `dir` (rank 0 only).
  void EnableTensorBoard(const std::string& dir);
  // Only rank 0 reports metrics and progress; every rank reports logs.
  void set_is_primary(bool primary) { primary_ = primary; }

  void OnProgress(int64_t step, int64_t max_steps) override;
  void OnMetric(const std::string& name, double value, int64_t step) override;
  void OnLog(const std::string& level, const std::string& message) override;
  void OnCheckpoint(const WrittenCheckpoint& checkpoint) override;
  bool Cancelled() const override { return cancelled_->load(); }
  bool PauseRequested() const override { return paused_ != nullptr && paused_->load(); }

  void Result(bool ok, const std::string& failure_cause, const std::string& message);

 private:
  void Emit(const std::string& line);

  std::FILE* out_;
  const std::atomic<bool>* cancelled_;
  const std::atomic<bool>* paused_;
  bool primary_ = true;
  std::mutex mu_;
  std::unique_ptr<metrics::TensorBoardWriter> tensorboard_;
};

}  // namespace bert::engine
