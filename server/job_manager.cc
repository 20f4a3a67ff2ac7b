// JobManager: jobs, stages and their state machines (the job API half).
// The agent half (register, heartbeat, acquire, report, complete, leases,
// scheduling) is in job_manager_agents.cc.
#include "server/job_manager.h"
#include "server/job_manager_change.h"

#include <algorithm>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "server/job_model.h"
#include "server/time_util.h"
#include "spec/job_spec.h"

namespace bert::server {


namespace {
constexpr size_t kMaxSpecBytes = 1 << 20;
constexpr size_t kMaxIdempotencyKeyBytes = 256;
}  // namespace

JobManager::JobManager(storage::Store* store, EventBus* bus, const Clock* clock,
                       JobManagerOptions options, metrics::ControllerMetrics* metrics)
    : store_(store),
      bus_(bus),
      clock_(clock),
      options_(std::move(options)),
      metrics_(metrics),
      leases_(clock, options_.lease_ttl) {}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(
    storage::Store* store, EventBus* bus, const Clock* clock, JobManagerOptions options,
    metrics::ControllerMetrics* metrics) {
  std::unique_ptr<JobManager> manager(new JobManager(store, bus, clock, std::move(options), metrics));
  absl::MutexLock lock(&manager->mu_);
  BERT_RETURN_IF_ERROR(manager->Load());
  return manager;
}

absl::Status JobManager::Load() {
  const absl::Time now = clock_->Now();
  const absl::Duration restart_lease = std::max(options_.lease_ttl, options_.restart_grace);
  BERT_ASSIGN_OR_RETURN(std::vector<v1::AgentInfo> agents, store_->ListAgents());
  for (v1::AgentInfo& agent : agents) {
    const std::string id = agent.id();
    agents_[id].info = std::move(agent);
    // Every known agent gets one grace period to come back after a controller restart.
    if (agents_[id].info.healthy()) leases_.Renew(id, restart_lease);
  }
  std::map<v1::State, int64_t> job_counts;
  absl::Status status = store_->ForEachJob([&](const v1::Job& job) {
    jobs_[job.id()] = job;
    ++job_counts[job.state()];
    if (IsFinal(job.state())) return true;
    for (const v1::Stage& stage : job.stages()) {
      for (const v1::ShardAttempt& shard : stage.shards()) {
        if (shard.state() != v1::RUNNING) continue;
        delivered_at_[ShardKey{job.id(), stage.kind(), shard.shard_index()}] = now;
        if (!leases_.Live(shard.agent_id())) leases_.Renew(shard.agent_id(), restart_lease);
        if (!agents_.contains(shard.agent_id())) agents_[shard.agent_id()].info.set_id(shard.agent_id());
      }
    }
    return true;
  });
  BERT_RETURN_IF_ERROR(status);
  if (metrics_ != nullptr) {
    for (v1::State s : {v1::QUEUED, v1::RUNNING, v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}) {
      metrics_->SetJobsByState(s, job_counts[s]);
    }
  }
  return absl::OkStatus();
}

std::string JobManager::NewJobId() const {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  const absl::Time now = clock_->Now();
  for (;;) {
    std::string id = absl::StrCat(
        "j-", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()),
        absl::StrFormat("%03d", static_cast<int>(absl::ToUnixMillis(now) % 1000)), "-",
        absl::StrFormat("%04x", static_cast<unsigned>(rng() & 0xffff)));
    if (!jobs_.contains(id)) return id;
  }
}

void JobManager::Emit(Change& change, v1::Event event) {
  event.set_job_id(change.job.id());
  event.set_seq(change.job.last_event_seq() + 1);
  change.job.set_last_event_seq(event.seq());
  if (!event.has_time()) *event.mutable_time() = ToProto(clock_->Now());
  change.batch.PutEvent(event);
  change.events.push_back(std::move(event));
}

void JobManager::SetJobState(Change& change, v1::State to, v1::FailureCause cause,
                             const std::string& message) {
  v1::Job& job = change.job;
  const v1::State from = job.state();
  if (from == to) return;
  job.set_state(to);
  const auto now = ToProto(clock_->Now());
  if (to == v1::RUNNING && !job.has_started_at()) *job.mutable_started_at() = now;
  if (IsFinal(to)) {
    *job.mutable_finished_at() = now;
    job.set_failure_cause(cause);
    job.set_failure_message(message);
  }
  v1::Event event;
  v1::JobTransition* t = event.mutable_job();
  t->set_from(from);
  t->set_to(to);
  t->set_failure_cause(cause);
  t->set_message(message);
  Emit(change, std::move(event));
  change.job_transitions.emplace_back(from, to);
}

void JobManager::SetStageState(Change& change, v1::Stage* stage, v1::State to,
                               v1::FailureCause cause, const std::string& message) {
  const v1::State from = stage->state();
  if (from == to) return;
  stage->set_state(to);
  const auto now = ToProto(clock_->Now());
  if (to == v1::RUNNING && !stage->has_started_at()) *stage->mutable_started_at() = now;
  if (IsFinal(to)) *stage->mutable_finished_at() = now;
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
  Emit(change, std::move(event));
  change.stage_transitions.emplace_back(stage->kind(), from, to);
}

absl::Status JobManager::Commit(Change& change) {
  change.batch.PutJob(change.job);
  const absl::Time start = absl::Now();
  BERT_RETURN_IF_ERROR(store_->Write(change.batch));
  if (metrics_ != nullptr) {
    metrics_->ObserveStoreWrite(absl::ToDoubleSeconds(absl::Now() - start));
    for (auto [from, to] : change.job_transitions) metrics_->OnJobStateChanged(from, to);
    for (auto [kind, from, to] : change.stage_transitions) {
      metrics_->OnStageStateChanged(kind, from, to);
    }
  }
  const std::string id = change.job.id();
  jobs_[id] = std::move(change.job);
  bus_->Publish(change.events);
  const absl::Time now = clock_->Now();
  for (auto& [agent_id, assignment] : change.deliveries) {
    delivered_at_.erase(ShardKey{id, assignment.ref().stage(), assignment.ref().shard_index()});
    agents_[agent_id].outbox.push_back(std::move(assignment));
  }
  (void)now;
  ++work_generation_;
  return absl::OkStatus();
}

void JobManager::Advance(Change& change) {
  v1::Stage* stage = CurrentStage(&change.job);
  if (stage == nullptr) {
    SetJobState(change, v1::SUCCEEDED, v1::FAILURE_CAUSE_UNSPECIFIED, "");
    return;
  }
  if (stage->state() != v1::QUEUED || stage->shards_size() > 0) return;
  const int pieces = std::max(1, stage->shard_count());
  for (int i = 0; i < pieces; ++i) {
    v1::ShardAttempt* shard = stage->add_shards();
    shard->set_shard_index(i);
    shard->set_state(v1::QUEUED);
  }
  *stage->mutable_queued_at() = ToProto(clock_->Now());
}

absl::StatusOr<SubmitResult> JobManager::Submit(const v1::SubmitJobRequest& request,
                                                const std::string& subject) {
  if (request.spec_yaml().size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("spec_yaml: ", request.spec_yaml().size(),
                                                   " bytes is over the limit of ", kMaxSpecBytes));
  }
  if (request.idempotency_key().size() > kMaxIdempotencyKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("idempotency_key: longer than ",
                                                   kMaxIdempotencyKeyBytes, " bytes"));
  }
  spec::ParseOptions parse_options;
  parse_options.base_dir = request.base_dir();
  parse_options.check_paths = options_.check_spec_paths;
  spec::ParseResult parsed = spec::ParseJobSpec(request.spec_yaml(), parse_options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid job spec:\n",
                                                   spec::FormatErrors("job.yaml", parsed.errors)));
  }

  absl::MutexLock lock(&mu_);
  if (!request.idempotency_key().empty()) {
    BERT_ASSIGN_OR_RETURN(auto existing,
                          store_->FindIdempotencyKey(subject, request.idempotency_key()));
    if (existing.has_value()) {
      auto it = jobs_.find(*existing);
      if (it == jobs_.end()) {
        return absl::InternalError(absl::StrCat("idempotency key names unknown job ", *existing));
      }
      if (it->second.spec_yaml() != request.spec_yaml()) {
        return absl::AlreadyExistsError(
            absl::StrCat("idempotency_key '", request.idempotency_key(), "' was used for job ",
                         *existing, " with a different spec"));
      }
      return SubmitResult{it->second, true};
    }
  }

  const absl::Time now = clock_->Now();
  v1::Job job;
  job.set_id(NewJobId());
  job.set_name(parsed.spec.name().empty() ? job.id() : parsed.spec.name());
  *job.mutable_spec() = parsed.spec;
  job.set_spec_yaml(request.spec_yaml());
  job.set_submitted_by(subject);
  job.set_idempotency_key(request.idempotency_key());
  *job.mutable_created_at() = ToProto(now);
  const v1::JobSpec& spec = job.spec();
  const std::vector<v1::StageKind> planned = spec::PlannedStages(spec);
  Change change(std::move(job));
  SetJobState(change, v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED, "submitted");
  for (v1::StageKind kind : kPipeline) {
    v1::Stage* stage = change.job.add_stages();
    stage->set_kind(kind);
    stage->set_max_attempts(std::max(1, spec.resources().max_attempts()));
    int shards = 1;
    if (IsFanOut(kind)) shards = std::max(1, spec.resources().prep_shards());
    if (IsGang(kind)) shards = std::max(1, spec.resources().hosts());
    stage->set_shard_count(shards);
    const bool runs = std::find(planned.begin(), planned.end(), kind) != planned.end();
    if (runs) {
      SetStageState(change, stage, v1::QUEUED, v1::FAILURE_CAUSE_UNSPECIFIED, "");
      continue;
    }
    // The spec supplies this stage's output: record it as the stage's output.
    v1::Artifact supplied;
    if (kind == v1::TOKENIZER && !spec.tokenizer().from().empty()) {
      supplied.set_name("tokenizer");
      supplied.set_uri("file://" + spec.tokenizer().from());
    } else if (kind == v1::PREPROCESS && !spec.preprocess().from_dataset().empty()) {
      supplied.set_name("dataset");
      supplied.set_uri("file://" + spec.preprocess().from_dataset());
      supplied.set_is_directory(true);
    }
    if (!supplied.name().empty()) {
      supplied.set_id(absl::StrCat(change.job.id(), "/", StageName(kind), "/", supplied.name()));
      supplied.set_produced_by(kind);
      *supplied.mutable_created_at() = ToProto(now);
      *stage->add_outputs() = supplied;
      change.batch.PutArtifact(supplied);
    }
    SetStageState(change, stage, v1::SKIPPED, v1::FAILURE_CAUSE_UNSPECIFIED,
                  "the spec supplies this stage's output");
  }
  Advance(change);
  if (!request.idempotency_key().empty()) {
    change.batch.PutIdempotencyKey(subject, request.idempotency_key(), change.job.id());
  }
  const std::string id = change.job.id();
  BERT_RETURN_IF_ERROR(Commit(change));
  return SubmitResult{jobs_[id], false};
}

v1::ValidateSpecResponse JobManager::Validate(const v1::ValidateSpecRequest& request) const {
  v1::ValidateSpecResponse response;
  spec::ParseOptions parse_options;
  parse_options.base_dir = request.base_dir();
  parse_options.check_paths = options_.check_spec_paths;
  spec::ParseResult parsed = spec::ParseJobSpec(request.spec_yaml(), parse_options);
  for (const v1::SpecError& e : parsed.errors) *response.add_errors() = e;
  if (parsed.ok()) *response.mutable_normalized() = parsed.spec;
  return response;
}

absl::StatusOr<v1::Job> JobManager::GetJob(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  return it->second;
}

absl::StatusOr<bool> JobManager::IsFinished(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  return IsFinal(it->second.state());
}

absl::StatusOr<v1::ListJobsResponse> JobManager::ListJobs(const v1::ListJobsRequest& request) const {
  if (request.page_size() < 0 || request.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size: must be between 0 and 1000");
  }
  const int page_size = request.page_size() == 0 ? 50 : request.page_size();
  v1::ListJobsResponse response;
  absl::MutexLock lock(&mu_);
  // Ids sort by creation time; newest first.
  auto it = request.page_token().empty() ? jobs_.rbegin()
                                         : std::make_reverse_iterator(jobs_.lower_bound(request.page_token()));
  for (; it != jobs_.rend(); ++it) {
    const v1::Job& job = it->second;
    if (!request.states().empty() &&
        std::find(request.states().begin(), request.states().end(), job.state()) ==
            request.states().end()) {
      continue;
    }
    if (!absl::StartsWith(job.name(), request.name_prefix())) continue;
    bool labels_match = true;
    for (const auto& [key, value] : request.labels()) {
      auto label = job.spec().labels().find(key);
      if (label == job.spec().labels().end() || label->second != value) labels_match = false;
    }
    if (!labels_match) continue;
    if (response.jobs_size() == page_size) {
      response.set_next_page_token(response.jobs(page_size - 1).id());
      break;
    }
    *response.add_jobs() = job;
  }
  return response;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& job_id, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  if (IsFinal(it->second.state())) return it->second;
  Change change(it->second);
  const std::string message = reason.empty() ? "cancelled by user" : reason;
  change.job.set_cancel_requested(true);
  for (v1::Stage& stage : *change.job.mutable_stages()) {
    if (IsFinal(stage.state())) continue;
    for (v1::ShardAttempt& shard : *stage.mutable_shards()) {
      if (!IsFinal(shard.state())) {
        shard.set_state(v1::CANCELLED);
        shard.clear_agent_id();
      }
    }
    stage.clear_agent_ids();
    SetStageState(change, &stage, v1::CANCELLED, v1::CANCELLED_BY_USER, message);
  }
  SetJobState(change, v1::CANCELLED, v1::CANCELLED_BY_USER, message);
  BERT_RETURN_IF_ERROR(Commit(change));
  return jobs_[job_id];
}

std::vector<v1::AgentInfo> JobManager::ListAgents(const std::string& pool) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::AgentInfo> out;
  for (const auto& [id, agent] : agents_) {
    if (!pool.empty() && std::find(agent.info.pools().begin(), agent.info.pools().end(), pool) ==
                             agent.info.pools().end()) {
      continue;
    }
    v1::AgentInfo info = agent.info;
    info.set_healthy(leases_.Live(id));
    info.clear_assignment_ids();
    for (const auto& [job_id, job] : jobs_) {
      if (IsFinal(job.state())) continue;
      for (const v1::Stage& stage : job.stages()) {
        for (const v1::ShardAttempt& shard : stage.shards()) {
          if (shard.state() == v1::RUNNING && shard.agent_id() == id) {
            info.add_assignment_ids(absl::StrCat(job_id, "/", StageName(stage.kind()), "/",
                                                 shard.shard_index(), "#", shard.attempt()));
          }
        }
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace bert::server
