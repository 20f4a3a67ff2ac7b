#include "agent/batching_reporter.h"

#include <google/protobuf/util/time_util.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace bert::agent {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxBatch = 1000;

google::protobuf::Timestamp Now() { return google::protobuf::util::TimeUtil::GetCurrentTime(); }

bool KeepForRetry(const absl::Status& s) {
  return s.code() != absl::StatusCode::kFailedPrecondition &&
         s.code() != absl::StatusCode::kNotFound &&
         s.code() != absl::StatusCode::kPermissionDenied &&
         s.code() != absl::StatusCode::kInvalidArgument;
}

}  // namespace

BatchingReporter::BatchingReporter(v1::StageKind stage, SendFn send,
                                   std::chrono::milliseconds interval, CheckpointFn on_checkpoint,
                                   size_t max_queued_logs)
    : stage_(stage),
      send_(std::move(send)),
      interval_(interval),
      on_checkpoint_(std::move(on_checkpoint)),
      max_queued_logs_(max_queued_logs) {
  sender_ = std::thread([this] { SenderLoop(); });
}

BatchingReporter::~BatchingReporter() { Finish(); }

void BatchingReporter::Progress(int64_t done, int64_t total, std::string_view unit) {
  absl::MutexLock lock(&mu_);
  progress_ = rate_.Measure(done, total, unit);
}

void BatchingReporter::Metric(std::string_view name, double value, int64_t step) {
  absl::MutexLock lock(&mu_);
  v1::StageReport r;
  v1::MetricPoint* m = r.mutable_metric();
  m->set_name(std::string(name));
  m->set_value(value);
  m->set_step(step);
  *m->mutable_time() = Now();
  m->set_stage(stage_);
  queue_.push_back(std::move(r));
}

void BatchingReporter::Log(std::string_view level, std::string_view message) {
  absl::MutexLock lock(&mu_);
  if (queued_logs_ >= max_queued_logs_) {
    ++dropped_logs_;
    return;
  }
  v1::StageReport r;
  v1::LogLine* l = r.mutable_log();
  l->set_stage(stage_);
  l->set_level(std::string(level));
  l->set_message(std::string(message));
  *l->mutable_time() = Now();
  queue_.push_back(std::move(r));
  ++queued_logs_;
}

bool BatchingReporter::Cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

void BatchingReporter::Checkpoint(const v1::CheckpointRecord& record) {
  v1::StageReport r;
  *r.mutable_checkpoint() = record;
  if (!r.checkpoint().has_created_at()) *r.mutable_checkpoint()->mutable_created_at() = Now();
  if (on_checkpoint_) on_checkpoint_(r.mutable_checkpoint());
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(r));
  urgent_ = true;
  cv_.SignalAll();
}

void BatchingReporter::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

void BatchingReporter::Pause() {
  absl::MutexLock lock(&mu_);
  paused_ = true;
}

bool BatchingReporter::PauseRequested() const {
  absl::MutexLock lock(&mu_);
  return paused_;
}

int64_t BatchingReporter::dropped_logs() const {
  absl::MutexLock lock(&mu_);
  return dropped_logs_;
}

int64_t BatchingReporter::dropped_on_finish() const {
  absl::MutexLock lock(&mu_);
  return dropped_on_finish_;
}

bool BatchingReporter::SendPending() {
  std::vector<v1::StageReport> batch;
  std::optional<v1::Progress> progress;
  {
    absl::MutexLock lock(&mu_);
    progress = std::move(progress_);
    progress_.reset();
    while (!queue_.empty() && batch.size() < kMaxBatch) {
      if (queue_.front().has_log()) --queued_logs_;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    urgent_ = false;
  }
  if (batch.empty() && !progress) return true;
  std::vector<v1::StageReport> to_send = batch;
  if (progress) *to_send.emplace_back().mutable_progress() = *progress;
  absl::StatusOr<bool> result = send_(std::move(to_send));
  absl::MutexLock lock(&mu_);
  if (result.ok()) {
    if (*result) cancelled_ = true;
    return true;
  }
  if (!KeepForRetry(result.status())) {
    cancelled_ = true;  // a stale attempt: whatever it does is refused
    return true;
  }
  // Put the batch back in front, in order; keep the newer progress if any.
  for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
    if (it->has_log()) ++queued_logs_;
    queue_.push_front(std::move(*it));
  }
  if (!progress_) progress_ = std::move(progress);
  return false;
}

void BatchingReporter::SenderLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time wake = absl::Now() + absl::FromChrono(interval_);
      while (!stopping_ && !urgent_ && !cv_.WaitWithDeadline(&mu_, wake)) {
      }
    }
    const bool sent = SendPending();
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      if (queue_.empty() && !progress_) return;
      if (Clock::now() >= finish_deadline_) {
        dropped_on_finish_ = static_cast<int64_t>(queue_.size());
        return;
      }
    }
    if (!sent) {
      // Back off a little so an unreachable controller is not hammered.
      cv_.WaitWithTimeout(&mu_, absl::FromChrono(interval_));
    }
  }
}

void BatchingReporter::Finish(std::chrono::milliseconds deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (!sender_.joinable() || stopping_) return;
    stopping_ = true;
    finish_deadline_ = Clock::now() + deadline;
  }
  cv_.SignalAll();
  sender_.join();
}

}  // namespace bert::agent
