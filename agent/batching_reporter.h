// A StageReporter that batches what a stage reports and sends it with a
// caller-supplied function (ReportStage over gRPC in the agent; a console
// printer in `run-stage`): progress is coalesced to the newest value, metrics,
// logs and checkpoints are queued in order and kept until a send succeeds, so
// a controller restart loses none of them. At most one send per `interval`,
// except that a checkpoint is sent at once.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/progress_rate.h"
#include "agent/stage_reporter.h"
#include "bert/v1/agent_service.pb.h"

namespace bert::agent {

class BatchingReporter final : public StageReporter {
 public:
  // Sends one batch; returns whether the controller asked to cancel. An
  // UNAVAILABLE-like error keeps the batch for the next try; FAILED_PRECONDITION
  // (a stale attempt) or NOT_FOUND drops it and cancels the stage.
  using SendFn = std::function<absl::StatusOr<bool>(std::vector<v1::StageReport> batch)>;
  // Called for each checkpoint before it is queued, e.g. to upload it and
  // fill its artifact; may block. Optional.
  using CheckpointFn = std::function<void(v1::CheckpointRecord* record)>;

  BatchingReporter(v1::StageKind stage, SendFn send, std::chrono::milliseconds interval,
                   CheckpointFn on_checkpoint = nullptr, size_t max_queued_logs = 10000);
  ~BatchingReporter() override;  // calls Finish()

  void Progress(int64_t done, int64_t total, std::string_view unit) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void Metric(std::string_view name, double value, int64_t step) override ABSL_LOCKS_EXCLUDED(mu_);
  void Log(std::string_view level, std::string_view message) override ABSL_LOCKS_EXCLUDED(mu_);
  bool Cancelled() const override ABSL_LOCKS_EXCLUDED(mu_);
  void Checkpoint(const v1::CheckpointRecord& record) override ABSL_LOCKS_EXCLUDED(mu_);

  // Stops the stage (a cancel from a heartbeat or a signal).
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);
  // Pauses it (a pause from a heartbeat or a report's answer): PauseRequested.
  void Pause() ABSL_LOCKS_EXCLUDED(mu_);
  bool PauseRequested() const override ABSL_LOCKS_EXCLUDED(mu_);
  // Sends what is queued, retrying until `deadline` passes, then stops the sender.
  void Finish(std::chrono::milliseconds deadline = std::chrono::seconds(30))
      ABSL_LOCKS_EXCLUDED(mu_);

  int64_t dropped_logs() const ABSL_LOCKS_EXCLUDED(mu_);
  // Reports still queued when Finish() gave up.
  int64_t dropped_on_finish() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void SenderLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Takes a batch, sends it, and puts it back on failure. Returns true when sent.
  bool SendPending() ABSL_LOCKS_EXCLUDED(mu_);

  const v1::StageKind stage_;
  const SendFn send_;
  const std::chrono::milliseconds interval_;
  const CheckpointFn on_checkpoint_;
  const size_t max_queued_logs_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on a checkpoint and by Finish()
  // Metrics, logs, checkpoints, in order.
  std::deque<v1::StageReport> queue_ ABSL_GUARDED_BY(mu_);
  // Newest progress not yet sent.
  std::optional<v1::Progress> progress_ ABSL_GUARDED_BY(mu_);
  size_t queued_logs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_logs_ ABSL_GUARDED_BY(mu_) = 0;
  bool urgent_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point finish_deadline_ ABSL_GUARDED_BY(mu_);
  int64_t dropped_on_finish_ ABSL_GUARDED_BY(mu_) = 0;
  ProgressRate rate_ ABSL_GUARDED_BY(mu_);
  std::thread sender_;  // started by the constructor, joined by Finish()
};

}  // namespace bert::agent
