#include "server/job_state_machine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "protocol/artifact_ids.h"
#include "server/job_model.h"
#include "server/time_util.h"
#include "spec/job_spec.h"

namespace bert::server {

v1::Event LogEvent(v1::StageKind stage, const std::string& level, const std::string& message,
                   const std::string& agent_id) {
  v1::Event event;
  v1::LogLine* log = event.mutable_log();
  log->set_stage(stage);
  log->set_level(level);
  log->set_message(message);
  log->set_agent_id(agent_id);
  return event;
}

int AttemptsCounted(const v1::ShardAttempt& shard) {
  return std::max(0, shard.attempt() - shard.attempts_before());
}

void RefreshStageAgents(v1::Stage* stage) {
  stage->clear_agent_ids();
  int attempt = stage->attempt();
  for (const v1::ShardAttempt& shard : stage->shards()) {
    attempt = std::max(attempt, shard.attempt());
    if (shard.state() != v1::RUNNING) continue;
    if (std::find(stage->agent_ids().begin(), stage->agent_ids().end(), shard.agent_id()) ==
        stage->agent_ids().end()) {
      stage->add_agent_ids(shard.agent_id());
    }
  }
  stage->set_attempt(attempt);
}

JobStateMachine::JobStateMachine(v1::Job job, absl::Time now) : job_(std::move(job)), now_(now) {}

JobStateMachine JobStateMachine::Submit(const std::string& id, const v1::JobSpec& spec,
                                        const std::string& spec_yaml, const std::string& subject,
                                        const std::string& idempotency_key, absl::Time now) {
  v1::Job job;
  job.set_id(id);
  job.set_name(spec.name().empty() ? id : spec.name());
  *job.mutable_spec() = spec;
  job.set_spec_yaml(spec_yaml);
  job.set_submitted_by(subject);
  job.set_idempotency_key(idempotency_key);
  *job.mutable_created_at() = ToProto(now);
  JobStateMachine change(std::move(job), now);
  change.SetJobState(v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED, "submitted");
  const std::vector<v1::StageKind> planned = spec::PlannedStages(spec);
  for (v1::StageKind kind : protocol::PipelineStages()) {
    v1::Stage* stage = change.job_.add_stages();
    stage->set_kind(kind);
    stage->set_max_attempts(std::max(1, spec.resources().max_attempts()));
    int shards = 1;
    if (protocol::IsFanOutStage(kind)) shards = std::max(1, spec.resources().prep_shards());
    if (IsGang(kind)) shards = std::max(1, spec.resources().hosts());
    stage->set_shard_count(shards);
    if (std::find(planned.begin(), planned.end(), kind) != planned.end()) {
      change.SetStageState(stage, v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED, "");
      continue;
    }
    // The spec supplies this stage's output: record it as the stage's output.
    v1::Artifact supplied;
    if (kind == v1::TOKENIZER && !spec.tokenizer().from().empty()) {
      supplied.set_name(std::string(protocol::kTokenizerArtifact));
      supplied.set_uri("file://" + spec.tokenizer().from());
    } else if (kind == v1::PREPROCESS && !spec.preprocess().from_dataset().empty()) {
      supplied.set_name(std::string(protocol::kDatasetArtifact));
      supplied.set_uri("file://" + spec.preprocess().from_dataset());
      supplied.set_is_directory(true);
    }
    if (!supplied.name().empty()) {
      supplied.set_id(protocol::StageArtifactId(id, kind, supplied.name()));
      supplied.set_produced_by(kind);
      *supplied.mutable_created_at() = ToProto(now);
      *stage->add_outputs() = supplied;
      change.AddArtifact(std::move(supplied));
    }
    change.SetStageState(stage, v1::SKIPPED, v1::FAILURE_CAUSE_UNSPECIFIED,
                         "the spec supplies this stage's output");
  }
  change.Advance();
  return change;
}

void JobStateMachine::Emit(v1::Event event) {
  event.set_job_id(job_.id());
  event.set_seq(job_.last_event_seq() + 1);
  job_.set_last_event_seq(event.seq());
  if (!event.has_time()) *event.mutable_time() = ToProto(now_);
  events_.push_back(std::move(event));
}

void JobStateMachine::SetJobState(v1::State to, v1::FailureCause cause, const std::string& message) {
  const v1::State from = job_.state();
  if (from == to) return;
  job_.set_state(to);
  if (to == v1::RUNNING && !job_.has_started_at()) *job_.mutable_started_at() = ToProto(now_);
  if (IsFinal(to)) {
    job_.set_pause_requested(false);  // a job that finished while pausing has nothing to pause
    *job_.mutable_finished_at() = ToProto(now_);
    job_.set_failure_cause(cause);
    job_.set_failure_message(message);
  }
  v1::Event event;
  v1::JobTransition* t = event.mutable_job();
  t->set_from(from);
  t->set_to(to);
  t->set_failure_cause(cause);
  t->set_message(message);
  Emit(std::move(event));
  job_transitions_.emplace_back(from, to);
}

void JobStateMachine::SetStageState(v1::Stage* stage, v1::State to, v1::FailureCause cause,
                                    const std::string& message) {
  const v1::State from = stage->state();
  if (from == to) return;
  stage->set_state(to);
  if (to == v1::RUNNING || IsFinal(to)) stage->clear_waiting_reason();
  if (to == v1::RUNNING && !stage->has_started_at()) *stage->mutable_started_at() = ToProto(now_);
  if (IsFinal(to)) *stage->mutable_finished_at() = ToProto(now_);
  if (to == v1::FAILED || to == v1::CANCELLED) {
    stage->set_failure_cause(cause);
    stage->set_failure_message(message);
  }
  v1::Event event;
  v1::StageTransition* t = event.mutable_stage();
  t->set_stage(stage->kind());
  t->set_from(from);
  t->set_to(to);
  t->set_attempt(stage->attempt());
  t->set_failure_cause(cause);
  t->set_message(message);
  Emit(std::move(event));
  stage_transitions_.emplace_back(stage->kind(), from, to);
}

void JobStateMachine::Advance() {
  v1::Stage* stage = CurrentStage(&job_);
  if (stage == nullptr) {
    SetJobState(v1::SUCCEEDED, v1::FAILURE_CAUSE_UNSPECIFIED, "");
    return;
  }
  if (stage->state() != v1::QUEUED || stage->shards_size() > 0) return;
  const int pieces = std::max(1, stage->shard_count());
  for (int i = 0; i < pieces; ++i) {
    v1::ShardAttempt* shard = stage->add_shards();
    shard->set_shard_index(i);
    shard->set_state(v1::QUEUED);
  }
  *stage->mutable_queued_at() = ToProto(now_);
}

v1::ShardAttempt* JobStateMachine::StartPiece(v1::StageKind kind, int32_t shard_index,
                                              const std::string& agent_id,
                                              std::optional<absl::Time> lease_deadline) {
  v1::Stage* stage = FindStage(&job_, kind);
  if (stage == nullptr) return nullptr;
  v1::ShardAttempt* shard = FindShard(stage, shard_index);
  if (shard == nullptr) return nullptr;
  shard->set_attempt(shard->attempt() + 1);
  shard->set_state(v1::RUNNING);
  shard->set_agent_id(agent_id);
  if (lease_deadline) *shard->mutable_lease_deadline() = ToProto(*lease_deadline);
  RefreshStageAgents(stage);
  SetStageState(stage, v1::RUNNING, v1::FAILURE_CAUSE_UNSPECIFIED, "");
  if (job_.state() == v1::QUEUED) SetJobState(v1::RUNNING, v1::FAILURE_CAUSE_UNSPECIFIED, "");
  Emit(LogEvent(kind, "info",
                absl::StrCat(protocol::StageName(kind), " piece ", shard_index, " attempt ",
                             shard->attempt(), " started on agent ", agent_id),
                agent_id));
  return shard;
}

void JobStateMachine::SetWaitingReason(v1::StageKind kind, const std::string& reason) {
  v1::Stage* stage = FindStage(&job_, kind);
  if (stage == nullptr || stage->waiting_reason() == reason) return;
  stage->set_waiting_reason(reason);
  Emit(reason.empty()
           ? LogEvent(kind, "info",
                      absl::StrCat(protocol::StageName(kind),
                                   " no longer waits: a live agent can now run it"),
                      "")
           : LogEvent(kind, "warning",
                      absl::StrCat(protocol::StageName(kind), " cannot be placed: ", reason), ""));
}

void JobStateMachine::SucceedPiece(
    v1::StageKind kind, int32_t shard_index, std::vector<v1::Artifact> outputs,
    const std::function<std::optional<v1::Artifact>()>& newest_checkpoint) {
  v1::Stage* stage = FindStage(&job_, kind);
  v1::ShardAttempt* shard = stage == nullptr ? nullptr : FindShard(stage, shard_index);
  if (shard == nullptr) return;
  const std::string agent_id = shard->agent_id();
  shard->clear_outputs();
  for (v1::Artifact& a : outputs) {
    AddArtifact(a);
    *shard->add_outputs() = std::move(a);
  }
  shard->set_state(v1::SUCCEEDED);
  shard->clear_agent_id();
  Emit(LogEvent(kind, "info",
                absl::StrCat(protocol::StageName(kind), " piece ", shard_index, " attempt ",
                             shard->attempt(), " succeeded"),
                agent_id));
  RefreshStageAgents(stage);
  OnPieceSucceeded(stage, newest_checkpoint);
  MaybeFinishPause();
}

void JobStateMachine::OnPieceSucceeded(
    v1::Stage* stage, const std::function<std::optional<v1::Artifact>()>& newest_checkpoint) {
  const int n = std::max(1, stage->shard_count());
  int done = 0;
  std::vector<const v1::Artifact*> outputs;
  for (const v1::ShardAttempt& shard : stage->shards()) {
    if (shard.shard_index() < n && shard.state() == v1::SUCCEEDED) {
      ++done;
      for (const v1::Artifact& a : shard.outputs()) outputs.push_back(&a);
    }
  }
  stage->set_shards_done(done);
  if (done < n) return;
  std::vector<v1::Artifact> stage_outputs;
  if (protocol::IsFanOutStage(stage->kind()) && n > 1) {
    v1::ShardAttempt* join = FindShard(stage, n);
    if (join == nullptr) {
      join = stage->add_shards();
      join->set_shard_index(n);
      join->set_state(v1::QUEUED);
      Emit(LogEvent(stage->kind(), "info",
                    absl::StrCat("all ", n, " ", protocol::StageName(stage->kind()),
                                 " shards succeeded; joining"),
                    ""));
      return;
    }
    if (join->state() != v1::SUCCEEDED) return;
    stage_outputs.assign(join->outputs().begin(), join->outputs().end());
  } else {
    for (const v1::Artifact* a : outputs) stage_outputs.push_back(*a);
  }
  if (stage->kind() == v1::PRETRAIN && stage_outputs.empty() && newest_checkpoint) {
    if (std::optional<v1::Artifact> checkpoint = newest_checkpoint()) {
      stage_outputs.push_back(std::move(*checkpoint));
    }
  }
  stage->clear_outputs();
  for (v1::Artifact& a : stage_outputs) *stage->add_outputs() = std::move(a);
  stage->clear_agent_ids();
  SetStageState(stage, v1::SUCCEEDED, v1::FAILURE_CAUSE_UNSPECIFIED, "");
  Advance();
}

void JobStateMachine::FailJob(v1::Stage* failed, v1::FailureCause cause, const std::string& message) {
  for (v1::ShardAttempt& shard : *failed->mutable_shards()) {
    if (!IsFinal(shard.state())) {
      shard.set_state(v1::CANCELLED);
      shard.clear_agent_id();
    }
  }
  failed->clear_agent_ids();
  SetStageState(failed, v1::FAILED, cause, message);
  for (v1::Stage& stage : *job_.mutable_stages()) {
    if (IsFinal(stage.state())) continue;
    SetStageState(&stage, v1::CANCELLED, v1::DEPENDENCY_FAILED,
                  absl::StrCat("stage ", protocol::StageName(failed->kind()), " failed"));
  }
  SetJobState(v1::FAILED, cause, absl::StrCat(protocol::StageName(failed->kind()), ": ", message));
}

void JobStateMachine::FailPiece(v1::StageKind kind, int32_t shard_index, v1::FailureCause cause,
                                const std::string& message, const RetryPolicy& retry) {
  v1::Stage* stage = FindStage(&job_, kind);
  v1::ShardAttempt* shard = stage == nullptr ? nullptr : FindShard(stage, shard_index);
  if (shard == nullptr) return;
  if (cause == v1::FAILURE_CAUSE_UNSPECIFIED) cause = v1::INTERNAL;
  if (cause == v1::PAUSED_BY_USER) {
    // Not a failure: the piece checkpointed and stopped for a pause. It waits,
    // queued, with a fresh count of attempts (the pause used none).
    shard->set_state(v1::QUEUED);
    shard->clear_agent_id();
    shard->clear_not_before();
    shard->set_attempts_before(shard->attempt());
    Emit(LogEvent(kind, "info",
                  absl::StrCat(protocol::StageName(kind), " piece ", shard_index, " attempt ",
                               shard->attempt(), " checkpointed and stopped for the pause",
                               message.empty() ? "" : ": ", message),
                  ""));
    RefreshStageAgents(stage);
    if (stage->agent_ids().empty() && stage->state() == v1::RUNNING) {
      SetStageState(stage, v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED, "paused");
    }
    MaybeFinishPause();
    return;
  }
  const int limit = RetryPolicy::AttemptLimit(cause, stage->max_attempts());
  const std::string what =
      absl::StrCat(protocol::StageName(kind), " piece ", shard_index, " attempt ", shard->attempt(),
                   " failed (", v1::FailureCause_Name(cause), "): ", message);
  shard->set_failure_cause(cause);
  shard->set_failure_message(message);
  if (AttemptsCounted(*shard) < limit) {
    const absl::Duration delay = retry.Backoff(AttemptsCounted(*shard) + 1);
    const auto not_before = ToProto(now_ + delay);
    std::vector<v1::ShardAttempt*> pieces;
    if (IsGang(kind)) {
      for (v1::ShardAttempt& s : *stage->mutable_shards()) pieces.push_back(&s);
    } else {
      pieces.push_back(shard);
    }
    for (v1::ShardAttempt* piece : pieces) {
      piece->set_state(v1::QUEUED);
      piece->clear_agent_id();
      *piece->mutable_not_before() = not_before;
    }
    *stage->mutable_not_before() = not_before;
    Emit(LogEvent(kind, "warning",
                  absl::StrCat(what, "; retrying in ", absl::FormatDuration(delay)), ""));
    RefreshStageAgents(stage);
    if (stage->agent_ids().empty()) SetStageState(stage, v1::QUEUED, cause, what);
    retries_.emplace_back(kind, cause);
    MaybeFinishPause();
    return;
  }
  shard->set_state(v1::FAILED);
  shard->clear_agent_id();
  if (limit == 0) {
    FailJob(stage, cause, message);
  } else {
    FailJob(stage, v1::RETRIES_EXHAUSTED, absl::StrCat(what, "; no attempts left (", limit, ")"));
  }
}

void JobStateMachine::Cancel(const std::string& reason) {
  const std::string message = reason.empty() ? "cancelled by user" : reason;
  job_.set_cancel_requested(true);
  for (v1::Stage& stage : *job_.mutable_stages()) {
    if (IsFinal(stage.state())) continue;
    for (v1::ShardAttempt& shard : *stage.mutable_shards()) {
      if (!IsFinal(shard.state())) {
        shard.set_state(v1::CANCELLED);
        shard.clear_agent_id();
      }
    }
    stage.clear_agent_ids();
    SetStageState(&stage, v1::CANCELLED, v1::CANCELLED_BY_USER, message);
  }
  SetJobState(v1::CANCELLED, v1::CANCELLED_BY_USER, message);
}

// ---------------------------------------------------------------- lifecycle

namespace {

bool AnyPieceRunning(const v1::Job& job) {
  for (const v1::Stage& stage : job.stages()) {
    for (const v1::ShardAttempt& shard : stage.shards()) {
      if (shard.state() == v1::RUNNING) return true;
    }
  }
  return false;
}

std::string Who(const std::string& subject) { return subject.empty() ? "" : " by " + subject; }

}  // namespace

absl::Status JobStateMachine::Retry(const std::string& subject) {
  if (job_.delete_requested()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_.id(), " is being deleted"));
  }
  if (job_.state() != v1::FAILED && job_.state() != v1::CANCELLED) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_.id(), " is ", v1::State_Name(job_.state()),
                     ": only a FAILED or CANCELLED job can be retried"));
  }
  job_.set_user_retries(job_.user_retries() + 1);
  job_.clear_failure_cause();
  job_.clear_failure_message();
  job_.clear_finished_at();
  job_.set_cancel_requested(false);
  job_.set_pause_requested(false);
  std::vector<std::string> kept, rerun;
  for (v1::Stage& stage : *job_.mutable_stages()) {
    const std::string name(protocol::StageName(stage.kind()));
    if (stage.state() == v1::SUCCEEDED || stage.state() == v1::SKIPPED) {
      kept.push_back(name);
      continue;
    }
    rerun.push_back(name);
    // A fan-out stage keeps the pieces that succeeded; a gang restarts whole.
    for (v1::ShardAttempt& shard : *stage.mutable_shards()) {
      if (shard.state() == v1::SUCCEEDED && !IsGang(stage.kind())) continue;
      shard.set_state(v1::QUEUED);
      shard.clear_agent_id();
      shard.clear_not_before();
      shard.clear_failure_cause();
      shard.clear_failure_message();
      shard.clear_outputs();
      shard.set_attempts_before(shard.attempt());
    }
    stage.clear_agent_ids();
    stage.clear_failure_cause();
    stage.clear_failure_message();
    stage.clear_finished_at();
    stage.clear_not_before();
    stage.clear_outputs();
    if (!stage.shards().empty()) *stage.mutable_queued_at() = ToProto(now_);
    SetStageState(&stage, v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED,
                  absl::StrCat("retry ", job_.user_retries()));
  }
  SetJobState(v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED,
              absl::StrCat("retry ", job_.user_retries()));
  const v1::Stage* current = CurrentStage(job_);
  Emit(LogEvent(current == nullptr ? v1::STAGE_KIND_UNSPECIFIED : current->kind(), "info",
                absl::StrCat("retry ", job_.user_retries(), " requested", Who(subject),
                             "; kept: ", kept.empty() ? "none" : absl::StrJoin(kept, ", "),
                             "; to run: ", absl::StrJoin(rerun, ", ")),
                ""));
  Advance();
  return absl::OkStatus();
}

absl::Status JobStateMachine::RequestPause(const std::string& subject, const std::string& reason) {
  if (job_.delete_requested()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_.id(), " is being deleted"));
  }
  if (job_.state() == v1::PAUSED || job_.pause_requested()) return absl::OkStatus();
  if (job_.state() != v1::QUEUED && job_.state() != v1::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_.id(), " is ", v1::State_Name(job_.state()),
                     ": only a QUEUED or RUNNING job can be paused"));
  }
  job_.set_pause_requested(true);
  const v1::Stage* current = CurrentStage(job_);
  const v1::StageKind kind = current == nullptr ? v1::STAGE_KIND_UNSPECIFIED : current->kind();
  Emit(LogEvent(kind, "info",
                absl::StrCat("pause requested", Who(subject), reason.empty() ? "" : ": ", reason,
                             kind == v1::PRETRAIN && AnyPieceRunning(job_)
                                 ? "; pre-training writes a checkpoint and stops"
                                 : "; running pieces finish, nothing new starts"),
                ""));
  MaybeFinishPause();
  return absl::OkStatus();
}

void JobStateMachine::MaybeFinishPause() {
  if (!job_.pause_requested() || IsFinal(job_.state()) || job_.state() == v1::PAUSED) return;
  if (AnyPieceRunning(job_)) return;
  v1::Stage* stage = CurrentStage(&job_);
  if (stage == nullptr) return;
  for (v1::ShardAttempt& shard : *stage->mutable_shards()) {
    if (IsFinal(shard.state())) continue;
    shard.set_state(v1::QUEUED);
    shard.clear_agent_id();
    shard.clear_not_before();
  }
  stage->clear_agent_ids();
  stage->clear_not_before();
  SetStageState(stage, v1::PAUSED, v1::FAILURE_CAUSE_UNSPECIFIED, "paused");
  job_.set_pause_requested(false);
  SetJobState(v1::PAUSED, v1::FAILURE_CAUSE_UNSPECIFIED,
              absl::StrCat("paused before ", protocol::StageName(stage->kind()),
                           " continues; no devices held"));
}

absl::Status JobStateMachine::Resume(const std::string& subject) {
  if (job_.delete_requested()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_.id(), " is being deleted"));
  }
  if (job_.pause_requested() && job_.state() != v1::PAUSED) {
    job_.set_pause_requested(false);
    const v1::Stage* current = CurrentStage(job_);
    Emit(LogEvent(current == nullptr ? v1::STAGE_KIND_UNSPECIFIED : current->kind(), "info",
                  absl::StrCat("pause withdrawn", Who(subject), " before the job paused"), ""));
    return absl::OkStatus();
  }
  if (job_.state() != v1::PAUSED) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_.id(), " is ",
                                                      v1::State_Name(job_.state()),
                                                      ": only a PAUSED job can be resumed"));
  }
  v1::Stage* stage = CurrentStage(&job_);
  if (stage != nullptr) {
    for (v1::ShardAttempt& shard : *stage->mutable_shards()) {
      if (shard.state() == v1::QUEUED) shard.clear_not_before();
    }
    *stage->mutable_queued_at() = ToProto(now_);
    SetStageState(stage, v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED, "resumed");
  }
  SetJobState(v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED, absl::StrCat("resumed", Who(subject)));
  Emit(LogEvent(stage == nullptr ? v1::STAGE_KIND_UNSPECIFIED : stage->kind(), "info",
                absl::StrCat("resumed", Who(subject),
                             stage != nullptr && stage->kind() == v1::PRETRAIN
                                 ? "; pre-training continues from its newest checkpoint"
                                 : ""),
                ""));
  return absl::OkStatus();
}

}  // namespace bert::server
