// JobManager: the lock, the active jobs, and the commit. Each method finds
// what it needs by id, asks the parts (state machine, registry, builder,
// intake, scheduler) what changes, and commits it.
#include "server/job_manager.h"

#include <algorithm>
#include <climits>
#include <iostream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "server/job_model.h"
#include "server/report_intake.h"
#include "server/scheduler.h"
#include "server/scheduler_feasibility.h"
#include "server/time_util.h"
#include "server/warm_start.h"
#include "spec/job_spec.h"

namespace bert::server {
namespace {

constexpr size_t kMaxSpecBytes = 1 << 20;
constexpr size_t kMaxIdempotencyKeyBytes = 256;
// Store records a ListJobs page may read looking for matches before it returns
// what it has with a token to continue.
constexpr int kMaxJobsScannedPerPage = 10000;
constexpr size_t kMaxListPageBytes = 3 << 20;

// Active jobs whose current stage has a queued piece (possibly in backoff).
bool HasQueuedWork(const v1::Job& job) {
  // A paused or pausing job places nothing (its pieces wait, queued).
  if (job.state() == v1::PAUSED || job.pause_requested()) return false;
  const v1::Stage* stage = CurrentStage(job);
  if (stage == nullptr || IsFinal(stage->state())) return false;
  return std::any_of(stage->shards().begin(), stage->shards().end(),
                     [](const v1::ShardAttempt& s) { return s.state() == v1::QUEUED; });
}

PieceUse UseOf(const v1::Job& job, v1::StageKind kind) {
  if (AcceleratorOf(job.spec(), kind) == v1::CPU) return PieceUse{true, 0};
  return PieceUse{false, std::max(1, job.spec().resources().devices())};
}

bool Matches(const v1::ListJobsRequest& request, const v1::Job& job) {
  if (!request.states().empty() &&
      std::find(request.states().begin(), request.states().end(), job.state()) ==
          request.states().end()) {
    return false;
  }
  if (!absl::StartsWith(job.name(), request.name_prefix())) return false;
  for (const auto& [key, value] : request.labels()) {
    auto label = job.spec().labels().find(key);
    if (label == job.spec().labels().end() || label->second != value) return false;
  }
  return true;
}

bool OnlyActiveStates(const v1::ListJobsRequest& request) {
  if (request.states().empty()) return false;
  // Paused jobs are unfinished: held in memory too.
  return std::all_of(request.states().begin(), request.states().end(), [](int s) {
    return s == v1::QUEUED || s == v1::RUNNING || s == v1::PAUSED;
  });
}

}  // namespace

JobManager::JobManager(storage::Store* store, EventBus* bus, const Clock* clock,
                       JobManagerOptions options, metrics::ControllerMetrics* metrics)
    : store_(store),
      bus_(bus),
      clock_(clock),
      options_(std::move(options)),
      metrics_(metrics),
      builder_(AssignmentBuilderOptions{options_.artifact_root, options_.shared_output_root}),
      retention_(store, options_.artifact_root),
      collector_(store, JobCollectorOptions{options_.artifact_root, options_.finished_job_retention,
                                            options_.unreferenced_input_grace}),
      agents_(clock, options_.lease_ttl) {}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(
    storage::Store* store, EventBus* bus, const Clock* clock, JobManagerOptions options,
    metrics::ControllerMetrics* metrics) {
  std::unique_ptr<JobManager> manager(new JobManager(store, bus, clock, std::move(options), metrics));
  {
    absl::MutexLock lock(&manager->mu_);
    // Before serving: finish checkpoint deletes a crash interrupted.
    BERT_RETURN_IF_ERROR(manager->retention_.CollectGarbage().status());
    BERT_RETURN_IF_ERROR(manager->Load());
  }
  // And job deletes (JobCollector), with the retention of finished jobs.
  BERT_RETURN_IF_ERROR(manager->CollectGarbage().status());
  return manager;
}

// ---------------------------------------------------------------- loading

absl::Status JobManager::Load() {
  const absl::Time now = clock_->Now();
  const absl::Duration restart_lease = std::max(options_.lease_ttl, options_.restart_grace);
  BERT_ASSIGN_OR_RETURN(std::vector<v1::AgentInfo> agents, store_->ListAgents());
  // Every known agent gets one grace period to come back after a controller restart.
  for (const v1::AgentInfo& agent : agents) agents_.Restore(agent, restart_lease);
  std::map<v1::State, int64_t> job_counts;
  std::vector<v1::Job> active;
  BERT_RETURN_IF_ERROR(store_->ForEachJob([&](const v1::Job& job) {
    if (job.delete_requested()) return true;  // the collector finishes its delete
    ++job_counts[job.state()];
    if (!IsFinal(job.state())) active.push_back(job);
    return true;
  }));
  for (v1::Job& job : active) {
    BERT_RETURN_IF_ERROR(ReplayReports(&job));
    for (const v1::Stage& stage : job.stages()) {
      for (const v1::ShardAttempt& shard : stage.shards()) {
        if (shard.state() != v1::RUNNING) continue;
        const PieceKey key{job.id(), stage.kind(), shard.shard_index()};
        agents_.Run(key, shard.agent_id(), UseOf(job, stage.kind()));
        agents_.MarkDelivered(key, now);
        if (!agents_.Live(shard.agent_id())) agents_.Heartbeat(shard.agent_id(), restart_lease);
      }
    }
    if (HasQueuedWork(job)) waiting_.insert(job.id());
    const std::string id = job.id();
    active_[id] = std::move(job);
  }
  if (metrics_ != nullptr) {
    for (v1::State s : {v1::QUEUED, v1::RUNNING, v1::PAUSED, v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}) {
      metrics_->SetJobsByState(s, job_counts[s]);
    }
  }
  return absl::OkStatus();
}

absl::Status JobManager::ReplayReports(v1::Job* job) {
  constexpr int kPage = 4096;
  for (;;) {
    BERT_ASSIGN_OR_RETURN(std::vector<v1::Event> events,
                          store_->ListEvents(job->id(), job->last_event_seq(), kPage));
    for (const v1::Event& event : events) {
      if (event.has_progress()) {
        if (v1::Stage* stage = FindStage(job, event.progress().stage())) {
          *stage->mutable_progress() = event.progress().progress();
        }
      } else if (event.has_metric()) {
        (*job->mutable_latest_metrics())[event.metric().name()] = event.metric().value();
        job->set_metric_points(job->metric_points() + 1);
      } else if (event.has_log()) {
        job->set_log_bytes(job->log_bytes() + static_cast<int64_t>(event.log().message().size()));
      } else if (event.has_checkpoint()) {
        job->set_checkpoint_records(job->checkpoint_records() + 1);
      }
      job->set_last_event_seq(event.seq());
    }
    if (static_cast<int>(events.size()) < kPage) return absl::OkStatus();
  }
}

// ---------------------------------------------------------------- commit

absl::Status JobManager::Commit(JobStateMachine& change,
                                std::vector<std::pair<std::string, v1::Assignment>> deliveries) {
  return CommitWith(change, storage::StoreBatch(), std::move(deliveries));
}

absl::Status JobManager::CommitWith(JobStateMachine& change, storage::StoreBatch batch,
                                    std::vector<std::pair<std::string, v1::Assignment>> deliveries) {
  const std::string id = change.job().id();
  for (const v1::Event& event : change.events()) batch.PutEvent(event);
  for (const v1::Artifact& artifact : change.artifacts()) batch.PutArtifact(artifact);
  for (const v1::CheckpointRecord& record : change.checkpoints()) batch.PutCheckpoint(record);
  const bool final = IsFinal(change.job().state());
  int& unsaved = unsaved_events_[id];
  const bool rewrite = change.rewrite_job() || final ||
                       unsaved + static_cast<int>(change.events().size()) >= options_.max_unsaved_events;
  if (rewrite) batch.PutJob(change.job());
  const absl::Time start = absl::Now();
  absl::Status written = store_->Write(batch);
  if (!written.ok()) {
    if (unsaved == 0) unsaved_events_.erase(id);
    return written;
  }
  if (metrics_ != nullptr) {
    metrics_->ObserveStoreWrite(absl::ToDoubleSeconds(absl::Now() - start));
    for (auto [from, to] : change.job_transitions()) metrics_->OnJobStateChanged(from, to);
    for (auto [kind, from, to] : change.stage_transitions()) {
      metrics_->OnStageStateChanged(kind, from, to);
    }
    for (auto [kind, cause] : change.retries()) metrics_->OnRetry(kind, cause);
    for (const v1::Event& event : change.events()) {
      if (event.has_metric()) {
        metrics_->SetJobMetric(id, event.metric().name(), event.metric().value(), event.metric().step());
      }
    }
  }
  if (rewrite) {
    unsaved = 0;
  } else {
    unsaved += static_cast<int>(change.events().size());
  }
  // Reports alone (ReportIntake clears rewrite_job) move no piece and queue
  // nothing: the registry, the waiting set and Acquire's waiters stay as they are.
  const bool reports_only = !change.rewrite_job();
  if (!reports_only) SyncPieces(change.job());
  if (final) {
    active_.erase(id);
    waiting_.erase(id);
    unsaved_events_.erase(id);
  } else {
    if (!reports_only) {
      if (HasQueuedWork(change.job())) {
        waiting_.insert(id);
      } else {
        waiting_.erase(id);
      }
    }
    active_[id] = std::move(change.mutable_job());
  }
  bus_->Publish(change.events());
  for (auto& [agent_id, assignment] : deliveries) {
    agents_.ForgetDelivery(KeyOf(assignment.ref()));
    agents_.Enqueue(agent_id, std::move(assignment));
  }
  if (reports_only) return absl::OkStatus();
  ++work_generation_;
  return absl::OkStatus();
}

void JobManager::SyncPieces(const v1::Job& job) {
  const bool final = IsFinal(job.state());
  for (const v1::Stage& stage : job.stages()) {
    for (const v1::ShardAttempt& shard : stage.shards()) {
      const PieceKey key{job.id(), stage.kind(), shard.shard_index()};
      const std::optional<std::string> holder = agents_.AgentOf(key);
      if (!final && shard.state() == v1::RUNNING) {
        if (holder != shard.agent_id()) agents_.Run(key, shard.agent_id(), UseOf(job, stage.kind()));
      } else if (holder) {
        agents_.Release(key);
      }
    }
  }
}

// ---------------------------------------------------------------- lookups

const v1::Job* JobManager::Active(const std::string& job_id) const {
  auto it = active_.find(job_id);
  return it == active_.end() ? nullptr : &it->second;
}

absl::StatusOr<v1::Job> JobManager::LookupLocked(const std::string& job_id) const {
  if (const v1::Job* job = Active(job_id)) return *job;
  BERT_ASSIGN_OR_RETURN(std::optional<v1::Job> stored, store_->GetJob(job_id));
  if (!stored) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  return *std::move(stored);
}

std::optional<v1::Artifact> JobManager::NewestCheckpoint(const std::string& job_id) const {
  auto checkpoints = store_->ListCheckpoints(job_id);
  if (!checkpoints.ok() || checkpoints->empty()) return std::nullopt;
  return checkpoints->back().artifact();
}

absl::StatusOr<std::string> JobManager::NewJobId() const {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  const absl::Time now = clock_->Now();
  for (;;) {
    std::string id = absl::StrCat(
        "j-", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()),
        absl::StrFormat("%03d", static_cast<int>(absl::ToUnixMillis(now) % 1000)), "-",
        absl::StrFormat("%04x", static_cast<unsigned>(rng() & 0xffff)));
    if (active_.contains(id)) continue;
    BERT_ASSIGN_OR_RETURN(std::optional<v1::Job> stored, store_->GetJob(id));
    if (!stored) return id;
  }
}

// ---------------------------------------------------------------- jobs

absl::StatusOr<SubmitResult> JobManager::Submit(const v1::SubmitJobRequest& request,
                                                const std::string& subject, bool admin) {
  if (request.spec_yaml().size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("spec_yaml: ", request.spec_yaml().size(),
                                                   " bytes is over the limit of ", kMaxSpecBytes));
  }
  if (request.base_dir().size() > PATH_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("base_dir: longer than ", PATH_MAX, " bytes (a path's limit)"));
  }
  if (request.idempotency_key().size() > kMaxIdempotencyKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("idempotency_key: longer than ",
                                                   kMaxIdempotencyKeyBytes, " bytes"));
  }
  spec::ParseOptions parse_options;
  parse_options.base_dir = request.base_dir();
  parse_options.check_paths = options_.check_spec_paths;
  // Uploaded sources name the submitter's files: not looked for here.
  for (const v1::InputFile& file : request.input_files()) {
    parse_options.uploaded_sources.insert(file.source_index());
  }
  spec::ParseResult parsed = spec::ParseJobSpec(request.spec_yaml(), parse_options);
  if (parsed.ok()) {
    for (const v1::InputFile& file : request.input_files()) {
      if (file.source_index() < 0 || file.source_index() >= parsed.spec.corpus().sources_size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input_files: ", file.path(), " names corpus.sources[", file.source_index(),
            "], but the spec has ", parsed.spec.corpus().sources_size(), " sources"));
      }
    }
  }
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid job spec:\n",
                                                   spec::FormatErrors("job.yaml", parsed.errors)));
  }

  absl::MutexLock lock(&mu_);
  if (!request.idempotency_key().empty()) {
    BERT_ASSIGN_OR_RETURN(auto existing,
                          store_->FindIdempotencyKey(subject, request.idempotency_key()));
    if (existing.has_value()) {
      absl::StatusOr<v1::Job> job = LookupLocked(*existing);
      if (absl::IsNotFound(job.status())) {
        return absl::InternalError(absl::StrCat("idempotency key names unknown job ", *existing));
      }
      BERT_RETURN_IF_ERROR(job.status());
      if (job->spec_yaml() != request.spec_yaml()) {
        return absl::AlreadyExistsError(
            absl::StrCat("idempotency_key '", request.idempotency_key(), "' was used for job ",
                         *existing, " with a different spec"));
      }
      return SubmitResult{*std::move(job), true};
    }
  }
  BERT_ASSIGN_OR_RETURN(const std::string id, NewJobId());
  // Warm start: model.from resolved now, so that a job naming a model its
  // submitter may not use, or that does not exist, is refused here.
  BERT_ASSIGN_OR_RETURN(
      WarmStart warm,
      ResolveWarmStart(
          parsed.spec, id, Submitter{subject, admin},
          [this](const std::string& job_id) {
            mu_.AssertHeld();
            return LookupLocked(job_id);
          },
          [this](const std::string& artifact_id) { return store_->GetArtifact(artifact_id); },
          clock_->Now()));
  if (warm.source_model) {
    BERT_RETURN_IF_ERROR(ApplySourceModel(
        *warm.source_model, [&parsed](const std::string& field) { return parsed.set_fields.Has(field); },
        &parsed.spec));
  }
  JobStateMachine change = JobStateMachine::Submit(id, parsed.spec, request.spec_yaml(), subject,
                                                   request.idempotency_key(), clock_->Now());
  for (const v1::Artifact& input : warm.inputs) *change.mutable_job().add_warm_start_inputs() = input;
  if (warm.recorded) change.AddArtifact(*warm.recorded);
  // Where its relative paths were resolved; an agent may read inputs there
  // only if its operator allows it (bert-agent --spec-dir-root).
  if (absl::StartsWith(request.base_dir(), "/")) change.mutable_job().set_spec_dir(request.base_dir());
  *change.mutable_job().mutable_input_files() = request.input_files();
  storage::StoreBatch batch;
  if (!request.idempotency_key().empty()) {
    batch.PutIdempotencyKey(subject, request.idempotency_key(), id);
  }
  v1::Job submitted = change.job();
  BERT_RETURN_IF_ERROR(CommitWith(change, std::move(batch), {}));
  return SubmitResult{std::move(submitted), false};
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
  return LookupLocked(job_id);
}

absl::StatusOr<bool> JobManager::IsFinished(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  if (Active(job_id) != nullptr) return false;
  BERT_ASSIGN_OR_RETURN(v1::Job job, LookupLocked(job_id));
  return IsFinal(job.state());
}

std::vector<v1::Job> JobManager::ActiveJobs() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Job> jobs;
  jobs.reserve(active_.size());
  for (const auto& [id, job] : active_) jobs.push_back(job);
  return jobs;
}

absl::StatusOr<v1::ListJobsResponse> JobManager::ListJobs(const v1::ListJobsRequest& request) const {
  if (request.page_size() < 0 || request.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size: must be between 0 and 1000");
  }
  const int page_size = request.page_size() == 0 ? 50 : request.page_size();
  v1::ListJobsResponse response;
  // Ids sort by creation time; newest first, strictly before the page token.
  // A page also ends before it passes kMaxListPageBytes (a job carries its
  // spec, up to 1 MiB), so that it fits any client's default receive limit.
  size_t page_bytes = 0;
  auto add = [&](const v1::Job& job) {
    if (!Matches(request, job)) return true;
    const size_t bytes = job.ByteSizeLong();
    if (response.jobs_size() == page_size ||
        (response.jobs_size() > 0 && page_bytes + bytes > kMaxListPageBytes)) {
      response.set_next_page_token(response.jobs(response.jobs_size() - 1).id());
      return false;
    }
    page_bytes += bytes;
    *response.add_jobs() = job;
    return true;
  };
  if (OnlyActiveStates(request)) {
    absl::MutexLock lock(&mu_);
    auto it = request.page_token().empty()
                  ? active_.rbegin()
                  : std::make_reverse_iterator(active_.lower_bound(request.page_token()));
    for (; it != active_.rend() && add(it->second); ++it) {
    }
    return response;
  }
  // Finished jobs live in the store only; active ones are read from memory
  // (their stored record may lack the newest reports).
  int scanned = 0;
  std::string last_scanned;
  std::vector<v1::Job> stored;
  BERT_RETURN_IF_ERROR(store_->ForEachJobBefore(request.page_token(), [&](const v1::Job& job) {
    last_scanned = job.id();
    if (Matches(request, job)) stored.push_back(job);
    return static_cast<int>(stored.size()) <= page_size && ++scanned < kMaxJobsScannedPerPage;
  }));
  {
    absl::MutexLock lock(&mu_);
    for (v1::Job& job : stored) {
      if (const v1::Job* active = Active(job.id())) job = *active;
    }
  }
  for (const v1::Job& job : stored) {
    if (!add(job)) return response;
  }
  if (scanned >= kMaxJobsScannedPerPage && response.next_page_token().empty()) {
    response.set_next_page_token(last_scanned);
  }
  return response;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& job_id, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  const v1::Job* job = Active(job_id);
  if (job == nullptr) return LookupLocked(job_id);  // finished (or NOT_FOUND)
  JobStateMachine change(*job, clock_->Now());
  change.Cancel(reason);
  v1::Job cancelled = change.job();
  BERT_RETURN_IF_ERROR(Commit(change));
  return cancelled;
}

std::vector<v1::AgentInfo> JobManager::ListAgents(const std::string& pool) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::AgentInfo> agents = agents_.List(pool);
  for (v1::AgentInfo& info : agents) {
    for (const PieceKey& key : agents_.PiecesOf(info.id())) {
      const v1::Job* job = Active(key.job_id);
      const v1::ShardAttempt* shard = job == nullptr ? nullptr : FindPiece(*job, key.stage, key.shard);
      if (shard == nullptr) continue;
      info.add_assignment_ids(absl::StrCat(key.job_id, "/", protocol::StageName(key.stage), "/",
                                           key.shard, "#", shard->attempt()));
    }
  }
  return agents;
}

// ---------------------------------------------------------------- agents

absl::StatusOr<v1::RegisterResponse> JobManager::Register(const v1::AgentInfo& agent,
                                                         const std::string& pool_prefix) {
  if (agent.id().empty()) return absl::InvalidArgumentError("agent.id: required");
  if (agent.id().size() > 200) return absl::InvalidArgumentError("agent.id: longer than 200 bytes");
  if (agent.pools().empty()) return absl::InvalidArgumentError("agent.pools: name at least one pool");
  if (agent.resources().accelerator_count() < 0) {
    return absl::InvalidArgumentError("agent.resources.accelerator_count: must not be negative");
  }
  constexpr int kMaxPools = 64, kMaxLabels = 64;
  constexpr size_t kMaxFieldBytes = 256;
  if (agent.pools_size() > kMaxPools || agent.labels_size() > kMaxLabels) {
    return absl::InvalidArgumentError(absl::StrCat("agent.pools, agent.labels: at most ", kMaxPools,
                                                   " and ", kMaxLabels, " entries"));
  }
  std::vector<std::pair<std::string, const std::string*>> fields = {
      {"hostname", &agent.hostname()}, {"address", &agent.address()}, {"version", &agent.version()}};
  for (const std::string& pool : agent.pools()) fields.push_back({"pools[]", &pool});
  for (const auto& [key, value] : agent.labels()) {
    fields.push_back({"labels key", &key});
    fields.push_back({"labels value", &value});
  }
  for (const auto& [name, value] : fields) {
    if (value->size() > kMaxFieldBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent.", name, ": longer than ", kMaxFieldBytes, " bytes"));
    }
  }
  absl::MutexLock lock(&mu_);
  if (agents_.Find(agent.id()) == nullptr) {
    if (agents_.size() >= kMaxAgents) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "agent '", agent.id(), "': this controller already knows ", kMaxAgents, " agents, its limit"));
    }
    if (!pool_prefix.empty() && agents_.CountWithPrefix(pool_prefix) >= kMaxAgentsPerPoolToken) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "agent '", agent.id(), "': the token for '", pool_prefix, "*' already registered ",
          kMaxAgentsPerPoolToken, " agent ids, its limit (give each agent a token of its own)"));
    }
  }
  const absl::Time now = clock_->Now();
  storage::StoreBatch batch;
  batch.PutAgent(agents_.Register(agent));
  BERT_RETURN_IF_ERROR(store_->Write(batch));

  v1::RegisterResponse response;
  response.set_agent_id(agent.id());
  response.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  response.set_lease_ttl_ms(absl::ToInt64Milliseconds(options_.lease_ttl));
  const std::set<PieceKey> undelivered = agents_.Undelivered(agent.id());
  for (const PieceKey& key : agents_.PiecesOf(agent.id())) {
    if (undelivered.contains(key)) continue;
    const v1::Job* job = Active(key.job_id);
    const v1::ShardAttempt* shard = job == nullptr ? nullptr : FindPiece(*job, key.stage, key.shard);
    if (shard == nullptr || shard->state() != v1::RUNNING) continue;
    agents_.MarkDelivered(key, now);  // the agent gets a grace period to list it
    v1::AssignmentRef* ref = response.add_live_assignments();
    ref->set_job_id(key.job_id);
    ref->set_stage(key.stage);
    ref->set_shard_index(key.shard);
    ref->set_attempt(shard->attempt());
  }
  ++work_generation_;
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> JobManager::Heartbeat(const v1::HeartbeatRequest& request) {
  absl::MutexLock lock(&mu_);
  v1::HeartbeatResponse response;
  const std::string& agent_id = request.agent_id();
  if (agents_.Find(agent_id) == nullptr || !agents_.Live(agent_id)) {
    response.set_reregister(true);
    for (const v1::AssignmentRef& ref : request.running()) *response.add_cancel() = ref;
    return response;
  }
  const absl::Time deadline = agents_.Heartbeat(agent_id);
  std::set<PieceKey> running;
  for (const v1::AssignmentRef& ref : request.running()) {
    running.insert(KeyOf(ref));
    bool live = false;
    auto job = active_.find(ref.job_id());
    if (job != active_.end() && server::CheckLive(&job->second, ref).ok()) {
      v1::ShardAttempt* shard = FindShard(FindStage(&job->second, ref.stage()), ref.shard_index());
      live = shard->agent_id() == agent_id;
      // Volatile: renewed in memory only; a restart gives every lease a fresh ttl.
      if (live) *shard->mutable_lease_deadline() = ToProto(deadline);
      // A pausing job's pre-training checkpoints and stops (PauseJob).
      if (live && job->second.pause_requested() && ref.stage() == v1::PRETRAIN) {
        *response.add_pause() = ref;
      }
    }
    if (!live) *response.add_cancel() = ref;
  }
  BERT_RETURN_IF_ERROR(LoseAgentWork(
      agent_id, running, true,
      absl::StrCat("agent ", agent_id, " no longer runs it (not in its heartbeat)")));
  return response;
}

absl::Status JobManager::LoseAgentWork(const std::string& agent_id, const std::set<PieceKey>& keep,
                                       bool only_after_grace, const std::string& why) {
  const absl::Time now = clock_->Now();
  const absl::Duration grace = std::max(options_.lease_ttl, 2 * options_.heartbeat_interval);
  std::map<std::string, std::vector<PieceKey>> lost_by_job;
  for (const PieceKey& key : agents_.PiecesOf(agent_id)) {
    if (keep.contains(key)) continue;
    if (only_after_grace) {
      const std::optional<absl::Time> delivered = agents_.DeliveredAt(key);
      if (!delivered || *delivered + grace > now) continue;
    }
    lost_by_job[key.job_id].push_back(key);
  }
  for (const auto& [job_id, keys] : lost_by_job) {
    const v1::Job* job = Active(job_id);
    if (job == nullptr) continue;
    JobStateMachine change(*job, now);
    for (const PieceKey& key : keys) {
      // An earlier piece's failure may have restarted this one's gang already.
      const v1::ShardAttempt* shard = FindPiece(change.job(), key.stage, key.shard);
      if (shard == nullptr || shard->state() != v1::RUNNING || shard->agent_id() != agent_id) continue;
      if (metrics_ != nullptr && only_after_grace) {
        metrics_->OnLeaseExpired(metrics::LeaseExpiryCause::kAssignment);
      }
      change.FailPiece(key.stage, key.shard, v1::AGENT_LOST, why, options_.retry);
    }
    BERT_RETURN_IF_ERROR(Commit(change));
  }
  return absl::OkStatus();
}

absl::Status JobManager::Tick() {
  absl::MutexLock lock(&mu_);
  for (const std::string& agent_id : agents_.TakeExpired()) {
    v1::AgentInfo unhealthy;
    if (agents_.MarkUnhealthy(agent_id, &unhealthy)) {
      storage::StoreBatch batch;
      batch.PutAgent(unhealthy);
      BERT_RETURN_IF_ERROR(store_->Write(batch));
    }
    if (metrics_ != nullptr) metrics_->OnLeaseExpired(metrics::LeaseExpiryCause::kAgentHeartbeat);
    BERT_RETURN_IF_ERROR(LoseAgentWork(
        agent_id, {}, false,
        absl::StrCat("agent ", agent_id, " lost: no heartbeat for ",
                     absl::FormatDuration(options_.lease_ttl))));
  }
  return UpdateWaitingReasonsLocked();
}

absl::Status JobManager::UpdateWaitingReasonsLocked() {
  const absl::Time now = clock_->Now();
  if (waiting_.empty() || now < next_waiting_check_) return absl::OkStatus();
  next_waiting_check_ = now + absl::Seconds(1);
  const std::vector<AgentCapacity> capacity = LiveCapacities(agents_.List(""));
  // Jobs asking for the same thing get the same answer: computed once.
  std::map<std::string, std::optional<std::string>> answers;
  std::vector<std::pair<std::string, std::string>> changed;  // job id, new reason
  for (const std::string& job_id : waiting_) {
    const v1::Job& job = active_.at(job_id);
    const v1::Stage* stage = CurrentStage(job);
    if (stage == nullptr || stage->state() != v1::QUEUED) continue;
    PendingTask task;
    task.stage = stage->kind();
    task.pool = PoolOf(job.spec(), stage->kind());
    task.accelerator = AcceleratorOf(job.spec(), stage->kind());
    task.devices = std::max(1, job.spec().resources().devices());
    task.shards.resize(IsGang(stage->kind()) ? std::max(1, stage->shard_count()) : 1);
    const std::string key = absl::StrCat(task.stage, "/", task.pool, "/", task.accelerator, "/",
                                         task.devices, "/", task.shards.size());
    auto answer = answers.find(key);
    if (answer == answers.end()) answer = answers.emplace(key, WhyUnplaceable(task, capacity)).first;
    const std::string reason = answer->second.value_or("");
    if (reason != stage->waiting_reason()) changed.emplace_back(job_id, reason);
  }
  for (const auto& [job_id, reason] : changed) {
    JobStateMachine change(active_.at(job_id), now);
    change.SetWaitingReason(CurrentStage(change.job())->kind(), reason);
    BERT_RETURN_IF_ERROR(Commit(change));
  }
  return absl::OkStatus();
}

absl::Status JobManager::ScheduleLocked() {
  if (waiting_.empty()) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  std::vector<PendingTask> queue;
  for (const std::string& job_id : waiting_) {
    const v1::Job& job = active_.at(job_id);
    const v1::Stage* stage = CurrentStage(job);
    PendingTask base;
    base.job_id = job_id;
    base.priority = job.spec().priority();
    base.order = absl::ToUnixNanos(FromProto(job.created_at()));
    base.stage = stage->kind();
    base.pool = PoolOf(job.spec(), stage->kind());
    base.accelerator = AcceleratorOf(job.spec(), stage->kind());
    base.devices = std::max(1, job.spec().resources().devices());
    for (std::vector<int32_t>& shards : ReadyTasks(*stage, now)) {
      PendingTask task = base;
      task.shards = std::move(shards);
      queue.push_back(std::move(task));
    }
  }
  // Queue length is exported by ControllerMetricsFeed (every pool, zeros too).
  if (queue.empty()) return absl::OkStatus();
  std::vector<AgentRoom> rooms = agents_.FreeRooms();
  if (rooms.empty()) return absl::OkStatus();
  const std::vector<Placement> placements = Schedule(queue, std::move(rooms));

  // Commit per job (a job may get several placements at once).
  std::map<std::string, std::vector<const Placement*>> by_job;
  for (const Placement& p : placements) by_job[queue[p.task].job_id].push_back(&p);
  for (const auto& [job_id, job_placements] : by_job) {
    JobStateMachine change(active_.at(job_id), now);
    std::vector<std::pair<const Placement*, size_t>> started;
    for (const Placement* p : job_placements) {
      const PendingTask& task = queue[p->task];
      for (size_t i = 0; i < task.shards.size(); ++i) {
        const v1::ShardAttempt* shard = change.StartPiece(task.stage, task.shards[i], p->agent_ids[i],
                                                          agents_.LeaseDeadline(p->agent_ids[i]));
        if (metrics_ != nullptr && shard != nullptr && shard->attempt() == 1) {
          const v1::Stage* stage = FindStage(change.job(), task.stage);
          metrics_->ObserveQueueWait(task.stage,
                                     absl::ToDoubleSeconds(now - FromProto(stage->queued_at())));
        }
        started.emplace_back(p, i);
      }
    }
    std::vector<std::pair<std::string, v1::Assignment>> deliveries;
    for (const auto& [p, i] : started) {
      const PendingTask& task = queue[p->task];
      const std::string& agent_id = p->agent_ids[i];
      const v1::Stage* stage = FindStage(change.job(), task.stage);
      const v1::ShardAttempt* shard = FindPiece(change.job(), task.stage, task.shards[i]);
      PlacementContext context;
      context.agent = agents_.Find(agent_id);
      context.gang_master = IsGang(task.stage) ? agents_.Find(p->agent_ids.front()) : nullptr;
      context.gang_size = IsGang(task.stage) ? static_cast<int>(p->agent_ids.size()) : 1;
      context.lease_deadline = agents_.LeaseDeadline(agent_id);
      if (task.stage == v1::PRETRAIN) {
        auto checkpoints = store_->ListCheckpoints(job_id);
        if (checkpoints.ok()) {
          for (auto it = checkpoints->rbegin();
               it != checkpoints->rend() &&
               static_cast<int>(context.resume_checkpoints.size()) < AssignmentBuilder::kResumeCheckpoints;
               ++it) {
            context.resume_checkpoints.push_back(it->artifact());
          }
        }
      }
      deliveries.emplace_back(agent_id, builder_.Build(change.job(), *stage, *shard, context));
    }
    BERT_RETURN_IF_ERROR(Commit(change, std::move(deliveries)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Assignment>> JobManager::Acquire(const std::string& agent_id,
                                                                  absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  absl::MutexLock lock(&mu_);
  if (agents_.Find(agent_id) == nullptr || !agents_.Live(agent_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("agent '", agent_id, "' is not registered (or its lease expired): register"));
  }
  for (;;) {
    for (int round = 0; round < 2; ++round) {
      while (std::optional<v1::Assignment> a = agents_.Dequeue(agent_id)) {
        if (!server::CheckLive(Active(a->ref().job_id()), a->ref()).ok()) continue;
        agents_.MarkDelivered(KeyOf(a->ref()), clock_->Now());
        return a;
      }
      if (round == 0) BERT_RETURN_IF_ERROR(ScheduleLocked());
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) return std::optional<v1::Assignment>();
    // Wake on any change of the queues, or every second for backoffs that end.
    struct WaitArg {
      const int64_t* current;
      int64_t seen;
    } arg{&work_generation_, work_generation_};
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](WaitArg* w) { return *w->current != w->seen; }, &arg),
                          std::min(deadline, now + absl::Seconds(1)));
    if (agents_.Find(agent_id) == nullptr || !agents_.Live(agent_id)) {
      return std::optional<v1::Assignment>();
    }
  }
}

// ---------------------------------------------------------------- reports

namespace {

// OK when the live piece `ref` of `job` runs on an agent the caller may act as.
absl::Status CheckHolder(const v1::Job& job, const v1::AssignmentRef& ref,
                         const MayActAs& may_act_as) {
  if (may_act_as == nullptr) return absl::OkStatus();
  const v1::ShardAttempt* shard = FindPiece(job, ref.stage(), ref.shard_index());
  if (shard != nullptr && may_act_as(shard->agent_id())) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(RefString(ref), " runs on agent '", shard == nullptr ? "" : shard->agent_id(),
                   "', which the caller may not act as"));
}

}  // namespace

absl::Status JobManager::CheckLive(const v1::AssignmentRef& ref, const MayActAs& may_act_as) const {
  absl::MutexLock lock(&mu_);
  if (const v1::Job* job = Active(ref.job_id())) {
    BERT_RETURN_IF_ERROR(server::CheckLive(job, ref));
    return CheckHolder(*job, ref, may_act_as);
  }
  BERT_ASSIGN_OR_RETURN(v1::Job job, LookupLocked(ref.job_id()));
  BERT_RETURN_IF_ERROR(server::CheckLive(&job, ref));
  return CheckHolder(job, ref, may_act_as);
}

absl::Status JobManager::CheckRunsJob(const std::string& job_id, const MayActAs& may_act_as) const {
  if (may_act_as == nullptr) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (const v1::Job* job = Active(job_id)) {
    for (const v1::Stage& stage : job->stages()) {
      for (const v1::ShardAttempt& shard : stage.shards()) {
        if (shard.state() != v1::RUNNING) continue;
        if (may_act_as(shard.agent_id())) return absl::OkStatus();
      }
    }
  }
  return absl::PermissionDeniedError(
      absl::StrCat("the caller runs no piece of job '", job_id, "' (or the job is finished)"));
}

absl::StatusOr<v1::ReportStageResponse> JobManager::Report(const v1::ReportStageRequest& request,
                                                           const MayActAs& may_act_as) {
  BERT_RETURN_IF_ERROR(ReportIntake::CheckShape(request));
  const v1::AssignmentRef& ref = request.ref();
  v1::ReportStageResponse response;
  absl::MutexLock lock(&mu_);
  const v1::Job* job = Active(ref.job_id());
  if (job == nullptr) {
    BERT_ASSIGN_OR_RETURN(v1::Job finished, LookupLocked(ref.job_id()));
    if (finished.state() == v1::CANCELLED) {
      response.set_cancel(true);
      return response;
    }
    return server::CheckLive(&finished, ref);
  }
  BERT_RETURN_IF_ERROR(server::CheckLive(job, ref));
  BERT_RETURN_IF_ERROR(CheckHolder(*job, ref, may_act_as));
  // A pausing job's pre-training checkpoints and stops (PauseJob).
  if (job->pause_requested() && ref.stage() == v1::PRETRAIN) response.set_pause(true);
  if (request.reports().empty()) return response;
  // Reports are the hot path: the job moves into the change and back (no
  // copy); what reports touch is saved first, to restore if the write fails.
  v1::Job& held = active_.at(ref.job_id());
  const int64_t last_seq = held.last_event_seq();
  const int64_t metric_points = held.metric_points();
  const int64_t log_bytes = held.log_bytes();
  const int64_t checkpoint_records = held.checkpoint_records();
  const v1::Progress progress = FindStage(held, ref.stage())->progress();
  std::vector<std::pair<std::string, std::optional<double>>> metrics;
  for (const v1::StageReport& report : request.reports()) {
    if (!report.has_metric()) continue;
    auto it = held.latest_metrics().find(report.metric().name());
    metrics.emplace_back(report.metric().name(), it == held.latest_metrics().end()
                                                     ? std::nullopt
                                                     : std::optional<double>(it->second));
  }
  JobStateMachine change(std::move(held), clock_->Now());
  absl::Status applied = ReportIntake::Apply(request, &change);
  if (applied.ok()) applied = Commit(change);
  if (!applied.ok()) {
    v1::Job& job_back = change.mutable_job();
    job_back.set_last_event_seq(last_seq);
    job_back.set_metric_points(metric_points);
    job_back.set_log_bytes(log_bytes);
    job_back.set_checkpoint_records(checkpoint_records);
    *FindStage(&job_back, ref.stage())->mutable_progress() = progress;
    // Restored newest first, so each name gets the value it had before.
    for (auto it = metrics.rbegin(); it != metrics.rend(); ++it) {
      if (it->second) {
        (*job_back.mutable_latest_metrics())[it->first] = *it->second;
      } else {
        job_back.mutable_latest_metrics()->erase(it->first);
      }
    }
    active_[ref.job_id()] = std::move(job_back);
    return applied;
  }
  // The new checkpoint records are durable: older ones past the limit may go.
  // A failure leaves them for the next checkpoint or the startup pass.
  const bool checkpointed = std::any_of(request.reports().begin(), request.reports().end(),
                                        [](const v1::StageReport& r) { return r.has_checkpoint(); });
  if (checkpointed) {
    const v1::Job& now_held = active_.at(ref.job_id());
    absl::StatusOr<int> pruned =
        retention_.Enforce(ref.job_id(), now_held.spec().training().save_total_limit());
    if (!pruned.ok()) std::cerr << "bertd: " << pruned.status() << "\n";
  }
  return response;
}

absl::Status JobManager::Complete(const v1::CompleteStageRequest& request,
                                  const MayActAs& may_act_as) {
  const v1::AssignmentRef& ref = request.ref();
  absl::MutexLock lock(&mu_);
  const v1::Job* job = Active(ref.job_id());
  if (job == nullptr) {
    BERT_ASSIGN_OR_RETURN(v1::Job finished, LookupLocked(ref.job_id()));
    if (finished.state() == v1::CANCELLED) return absl::OkStatus();
    return server::CheckLive(&finished, ref);
  }
  BERT_RETURN_IF_ERROR(server::CheckLive(job, ref));
  BERT_RETURN_IF_ERROR(CheckHolder(*job, ref, may_act_as));
  const absl::Time now = clock_->Now();
  const v1::Stage* stage = FindStage(*job, ref.stage());
  BERT_ASSIGN_OR_RETURN(std::vector<v1::Artifact> outputs, ReportIntake::Outputs(request, *stage, now));
  const v1::ShardAttempt* shard = FindPiece(*job, ref.stage(), ref.shard_index());
  if (metrics_ != nullptr && shard->has_lease_deadline()) {
    // Duration is approximate: from the stage's start to now.
    metrics_->ObserveStageDuration(ref.stage(), request.success() ? v1::SUCCEEDED : v1::FAILED,
                                   absl::ToDoubleSeconds(now - FromProto(stage->started_at())));
  }
  JobStateMachine change(*job, now);
  if (request.success()) {
    change.SucceedPiece(ref.stage(), ref.shard_index(), std::move(outputs),
                        [&] { return NewestCheckpoint(ref.job_id()); });
  } else {
    change.FailPiece(ref.stage(), ref.shard_index(), request.failure_cause(), request.message(),
                     options_.retry);
  }
  return Commit(change);
}

absl::Status JobManager::RecordArtifact(const v1::Artifact& artifact) {
  storage::StoreBatch batch;
  batch.PutArtifact(artifact);
  return store_->Write(batch);
}

}  // namespace bert::server
