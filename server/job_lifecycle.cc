// JobManager's lifecycle verbs: RetryJob, PauseJob, ResumeJob, DeleteJob and
// the collector pass. The transitions are JobStateMachine's; deleting files
// and records is JobCollector's; this file takes the lock and commits.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/job_manager.h"
#include "server/job_model.h"
#include "server/time_util.h"

namespace bert::server {

absl::StatusOr<v1::Job> JobManager::Retry(const std::string& job_id, const std::string& subject) {
  absl::MutexLock lock(&mu_);
  BERT_ASSIGN_OR_RETURN(v1::Job job, LookupLocked(job_id));
  JobStateMachine change(std::move(job), clock_->Now());
  BERT_RETURN_IF_ERROR(change.Retry(subject));
  const v1::Stage* pretrain = FindStage(change.job(), v1::PRETRAIN);
  if (pretrain != nullptr && pretrain->state() == v1::QUEUED) {
    // What the assignment builder will offer the first rank (newest first).
    const std::optional<v1::Artifact> newest = NewestCheckpoint(job_id);
    change.Emit(LogEvent(v1::PRETRAIN, "info",
                         newest ? absl::StrCat("pre-training resumes from ", newest->name(),
                                               ", the newest checkpoint the controller holds")
                                : "pre-training starts from the beginning: no checkpoint recorded",
                         ""));
  }
  v1::Job retried = change.job();
  BERT_RETURN_IF_ERROR(Commit(change));
  return retried;
}

absl::StatusOr<v1::Job> JobManager::Pause(const std::string& job_id, const std::string& subject,
                                          const std::string& reason) {
  absl::MutexLock lock(&mu_);
  BERT_ASSIGN_OR_RETURN(v1::Job job, LookupLocked(job_id));
  JobStateMachine change(std::move(job), clock_->Now());
  BERT_RETURN_IF_ERROR(change.RequestPause(subject, reason));
  if (change.events().empty()) return change.job();  // already paused or pausing
  v1::Job paused = change.job();
  BERT_RETURN_IF_ERROR(Commit(change));
  return paused;
}

absl::StatusOr<v1::Job> JobManager::Resume(const std::string& job_id, const std::string& subject) {
  absl::MutexLock lock(&mu_);
  BERT_ASSIGN_OR_RETURN(v1::Job job, LookupLocked(job_id));
  JobStateMachine change(std::move(job), clock_->Now());
  BERT_RETURN_IF_ERROR(change.Resume(subject));
  v1::Job resumed = change.job();
  BERT_RETURN_IF_ERROR(Commit(change));
  return resumed;
}

absl::Status JobManager::MarkDeleteLocked(v1::Job* job) {
  job->set_delete_requested(true);
  storage::StoreBatch batch;
  batch.PutJob(*job);
  BERT_RETURN_IF_ERROR(store_->Write(batch));
  if (active_.erase(job->id()) > 0) {  // a paused job: it holds no piece
    waiting_.erase(job->id());
    unsaved_events_.erase(job->id());
  }
  if (metrics_ != nullptr) metrics_->OnJobStateChanged(job->state(), v1::STATE_UNSPECIFIED);
  return absl::OkStatus();
}

std::optional<std::string> JobManager::WarmStartDependentLocked(const std::string& job_id) const {
  const std::string prefix = job_id + "/";
  for (const auto& [id, job] : active_) {
    if (id == job_id) continue;
    for (const v1::Artifact& input : job.warm_start_inputs()) {
      if (input.id().rfind(prefix, 0) == 0) return id;
    }
  }
  return std::nullopt;
}

absl::StatusOr<v1::DeleteJobResponse> JobManager::Delete(const std::string& job_id) {
  v1::Job job;
  {
    absl::MutexLock lock(&mu_);
    BERT_ASSIGN_OR_RETURN(job, LookupLocked(job_id));
    if (!job.delete_requested()) {
      if (!IsFinal(job.state()) && job.state() != v1::PAUSED) {
        return absl::FailedPreconditionError(absl::StrCat(
            "job ", job_id, " is ", v1::State_Name(job.state()),
            ": only a finished or paused job can be deleted (cancel or pause it first)"));
      }
      // An unfinished job that starts from this one's model or checkpoint
      // (model.from: job:<id>) would fail to fetch it.
      if (const std::optional<std::string> dependent = WarmStartDependentLocked(job_id)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "job ", job_id, " is the warm start (model.from) of unfinished job ", *dependent,
            ": delete it once that job has finished, or cancel that job first"));
      }
      BERT_RETURN_IF_ERROR(MarkDeleteLocked(&job));
    }
  }
  // Outside the lock: removing gigabytes of checkpoints must not stall
  // heartbeats. Nothing else touches a job marked for deletion.
  return collector_.FinishDelete(job);
}

absl::StatusOr<int> JobManager::CollectGarbage() {
  const absl::Time now = clock_->Now();
  BERT_ASSIGN_OR_RETURN(JobCollector::Due due, collector_.FindDue(now));
  std::vector<v1::Job> to_finish = std::move(due.interrupted);
  {
    absl::MutexLock lock(&mu_);
    for (const v1::Job& expired : due.expired) {
      // Re-read under the lock: it may have been retried since the scan.
      absl::StatusOr<v1::Job> job = LookupLocked(expired.id());
      if (!job.ok() || job->delete_requested() || !IsFinal(job->state()) ||
          FromProto(job->finished_at()) + options_.finished_job_retention > now ||
          WarmStartDependentLocked(job->id()).has_value()) {
        continue;  // (a job an unfinished warm start reads waits for it)
      }
      std::cerr << "bertd: deleting job " << job->id() << ": finished "
                << absl::FormatTime(FromProto(job->finished_at())) << ", past the retention of "
                << absl::FormatDuration(options_.finished_job_retention) << "\n";
      BERT_RETURN_IF_ERROR(MarkDeleteLocked(&*job));
      to_finish.push_back(*std::move(job));
    }
  }
  int deleted = 0;
  absl::Status first_error;
  for (const v1::Job& job : to_finish) {
    absl::StatusOr<v1::DeleteJobResponse> done = collector_.FinishDelete(job);
    if (!done.ok()) {
      std::cerr << "bertd: deleting job " << job.id() << ": " << done.status() << "\n";
      first_error.Update(done.status());
      continue;
    }
    ++deleted;
  }
  absl::StatusOr<int> inputs = collector_.CollectInputs(now);
  if (!inputs.ok()) first_error.Update(inputs.status());
  BERT_RETURN_IF_ERROR(first_error);
  return deleted;
}

}  // namespace bert::server
