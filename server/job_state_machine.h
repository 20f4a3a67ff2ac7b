// The job and stage state machines: one job's change in progress.
//
// A JobStateMachine holds a copy of a job and applies transitions to it (a
// submission, a piece started, succeeded or failed, a retry with backoff, a
// cancellation, the reports of a running piece), collecting the events that
// describe them and the records to store beside them. It does no I/O: the
// JobManager commits what it collected (one store batch), then publishes the
// events. Tests drive it with a job and a time, nothing else.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "server/retry_policy.h"

namespace bert::server {

// Not thread-safe; one change is built on one thread.
class JobStateMachine {
 public:
  // A change of `job` at time `now`.
  JobStateMachine(v1::Job job, absl::Time now);

  // A new job for a validated spec: every pipeline stage, QUEUED if the spec
  // runs it, else SKIPPED with the spec-supplied output recorded; the first
  // stage's pieces created. `created_at` is `now`.
  static JobStateMachine Submit(const std::string& id, const v1::JobSpec& spec,
                                const std::string& spec_yaml, const std::string& subject,
                                const std::string& idempotency_key, absl::Time now);

  const v1::Job& job() const { return job_; }
  v1::Job& mutable_job() { return job_; }
  absl::Time now() const { return now_; }

  // --- Transitions ---
  // Appends an event with the job's next seq (and `now` unless it has a time).
  void Emit(v1::Event event);
  // Moves the job (no-op when already there), emitting a JobTransition.
  void SetJobState(v1::State to, v1::FailureCause cause, const std::string& message);
  void SetStageState(v1::Stage* stage, v1::State to, v1::FailureCause cause,
                     const std::string& message);
  // Makes the first unfinished stage current (creating its pieces), or
  // finishes the job when every stage succeeded or was skipped.
  void Advance();
  // A queued piece placed on `agent_id`: its next attempt starts RUNNING.
  // Returns the piece, or null when the stage has no such piece.
  v1::ShardAttempt* StartPiece(v1::StageKind kind, int32_t shard_index, const std::string& agent_id,
                               std::optional<absl::Time> lease_deadline);
  // The running piece succeeded with `outputs` (ids already assigned). When
  // the whole stage is done it succeeds and the job advances; a fan-out stage
  // first queues its join piece. A PRETRAIN stage with no outputs takes
  // `newest_checkpoint()` as its output.
  void SucceedPiece(v1::StageKind kind, int32_t shard_index, std::vector<v1::Artifact> outputs,
                    const std::function<std::optional<v1::Artifact>()>& newest_checkpoint);
  // The piece failed: retried with backoff while `retry` allows (a gang
  // restarts whole), else the stage and the job fail.
  void FailPiece(v1::StageKind kind, int32_t shard_index, v1::FailureCause cause,
                 const std::string& message, const RetryPolicy& retry);
  // Cancels every unfinished stage and piece, then the job.
  void Cancel(const std::string& reason);

  // --- Lifecycle verbs (RetryJob, PauseJob, ResumeJob) ---
  // A FAILED or CANCELLED job runs again: stages that succeeded or were
  // skipped are kept (a fan-out stage keeps its succeeded pieces, a gang
  // restarts whole), the others are QUEUED with fresh attempt counts
  // (attempts_before), and the job is QUEUED; user_retries counts the call.
  // Pre-training then resumes from the newest checkpoint the controller holds
  // (the assignment builder offers it). FAILED_PRECONDITION for any other job.
  absl::Status Retry(const std::string& subject);
  // A QUEUED or RUNNING job pauses: pause_requested is set, nothing new is
  // placed, running data stages finish, and running pre-training is told to
  // checkpoint and stop (its pieces then complete with PAUSED_BY_USER). Once
  // no piece runs, the current stage and the job are PAUSED (at once when
  // none runs now). Already paused or pausing: no change. Otherwise
  // FAILED_PRECONDITION.
  absl::Status RequestPause(const std::string& subject, const std::string& reason);
  // A PAUSED job is QUEUED again (its current stage too, its pieces ready at
  // once); a job still pausing has its pause request withdrawn. Otherwise
  // FAILED_PRECONDITION.
  absl::Status Resume(const std::string& subject);
  // The queued stage `kind` waits because no live agent could ever run it
  // (`reason`, from scheduler_feasibility.h), or no longer ("" clears it). A
  // change is logged as an event; the reason also clears once the stage runs
  // or ends.
  void SetWaitingReason(v1::StageKind kind, const std::string& reason);

  // --- Records to store with the change ---
  // The job record itself is rewritten unless only reports were applied
  // (ReportIntake clears it: events alone are appended).
  void set_rewrite_job(bool rewrite) { rewrite_job_ = rewrite; }
  bool rewrite_job() const { return rewrite_job_; }
  void AddArtifact(v1::Artifact artifact) { artifacts_.push_back(std::move(artifact)); }
  void AddCheckpoint(v1::CheckpointRecord record) { checkpoints_.push_back(std::move(record)); }

  const std::vector<v1::Event>& events() const { return events_; }
  std::vector<v1::Event>& mutable_events() { return events_; }
  const std::vector<v1::Artifact>& artifacts() const { return artifacts_; }
  const std::vector<v1::CheckpointRecord>& checkpoints() const { return checkpoints_; }
  const std::vector<std::pair<v1::State, v1::State>>& job_transitions() const {
    return job_transitions_;
  }
  const std::vector<std::tuple<v1::StageKind, v1::State, v1::State>>& stage_transitions() const {
    return stage_transitions_;
  }
  // (stage, cause) of every retry scheduled by this change.
  const std::vector<std::pair<v1::StageKind, v1::FailureCause>>& retries() const { return retries_; }

 private:
  void FailJob(v1::Stage* failed, v1::FailureCause cause, const std::string& message);
  void OnPieceSucceeded(v1::Stage* stage,
                        const std::function<std::optional<v1::Artifact>()>& newest_checkpoint);
  // With a pause requested and no piece running: the job becomes PAUSED.
  void MaybeFinishPause();

  v1::Job job_;
  absl::Time now_;
  bool rewrite_job_ = true;
  std::vector<v1::Event> events_;
  std::vector<v1::Artifact> artifacts_;
  std::vector<v1::CheckpointRecord> checkpoints_;
  std::vector<std::pair<v1::State, v1::State>> job_transitions_;
  std::vector<std::tuple<v1::StageKind, v1::State, v1::State>> stage_transitions_;
  std::vector<std::pair<v1::StageKind, v1::FailureCause>> retries_;
};

// A log event of `stage` (agent_id may be empty: the controller's own).
v1::Event LogEvent(v1::StageKind stage, const std::string& level, const std::string& message,
                   const std::string& agent_id);

// Recomputes a stage's agent_ids (agents running its pieces) and attempt.
void RefreshStageAgents(v1::Stage* stage);

// Attempts of `shard` since its counts were last reset (RetryJob, a pause):
// what the retry limit counts.
int AttemptsCounted(const v1::ShardAttempt& shard);

}  // namespace bert::server
