// JobManager, the agent half: registration, leases, scheduling, reports,
// completion, failures and retries.
#include <algorithm>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/job_manager.h"
#include "server/job_manager_change.h"
#include "server/job_model.h"
#include "server/scheduler.h"
#include "server/time_util.h"

namespace bert::server {


namespace {

constexpr int kMaxReportsPerCall = 10000;
constexpr size_t kMaxLogBytes = 64 << 10;
constexpr int kResumeCheckpoints = 3;

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

const v1::ShardAttempt* FindShardConst(const v1::Job& job, const v1::AssignmentRef& ref) {
  const v1::Stage* stage = FindStage(job, ref.stage());
  if (stage == nullptr) return nullptr;
  for (const v1::ShardAttempt& shard : stage->shards()) {
    if (shard.shard_index() == ref.shard_index()) return &shard;
  }
  return nullptr;
}

}  // namespace

// ---------------------------------------------------------------- liveness

absl::Status JobManager::CheckLiveLocked(const v1::AssignmentRef& ref) const {
  auto it = jobs_.find(ref.job_id());
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", ref.job_id(), "' not found"));
  const v1::ShardAttempt* shard = FindShardConst(it->second, ref);
  if (shard == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("no such stage piece: ", RefString(ref)));
  }
  if (shard->state() != v1::RUNNING || shard->attempt() != ref.attempt()) {
    return absl::FailedPreconditionError(
        absl::StrCat("stale assignment ", RefString(ref), ": the piece is ",
                     v1::State_Name(shard->state()), " at attempt ", shard->attempt()));
  }
  return absl::OkStatus();
}

absl::Status JobManager::CheckLive(const v1::AssignmentRef& ref) const {
  absl::MutexLock lock(&mu_);
  return CheckLiveLocked(ref);
}

// ---------------------------------------------------------------- failures

void JobManager::FailJob(Change& change, v1::Stage* failed, v1::FailureCause cause,
                         const std::string& message) {
  for (v1::ShardAttempt& shard : *failed->mutable_shards()) {
    if (!IsFinal(shard.state())) {
      delivered_at_.erase(ShardKey{change.job.id(), failed->kind(), shard.shard_index()});
      shard.set_state(v1::CANCELLED);
      shard.clear_agent_id();
    }
  }
  failed->clear_agent_ids();
  SetStageState(change, failed, v1::FAILED, cause, message);
  for (v1::Stage& stage : *change.job.mutable_stages()) {
    if (IsFinal(stage.state())) continue;
    SetStageState(change, &stage, v1::CANCELLED, v1::DEPENDENCY_FAILED,
                  absl::StrCat("stage ", StageName(failed->kind()), " failed"));
  }
  SetJobState(change, v1::FAILED, cause, absl::StrCat(StageName(failed->kind()), ": ", message));
}

void JobManager::FailShard(Change& change, v1::Stage* stage, v1::ShardAttempt* shard,
                           v1::FailureCause cause, const std::string& message) {
  if (cause == v1::FAILURE_CAUSE_UNSPECIFIED) cause = v1::INTERNAL;
  const int limit = RetryPolicy::AttemptLimit(cause, stage->max_attempts());
  const std::string what =
      absl::StrCat(StageName(stage->kind()), " piece ", shard->shard_index(), " attempt ",
                   shard->attempt(), " failed (", v1::FailureCause_Name(cause), "): ", message);
  shard->set_failure_cause(cause);
  shard->set_failure_message(message);
  if (shard->attempt() < limit) {
    const absl::Duration delay = options_.retry.Backoff(shard->attempt() + 1);
    const auto not_before = ToProto(clock_->Now() + delay);
    std::vector<v1::ShardAttempt*> pieces;
    if (IsGang(stage->kind())) {
      for (v1::ShardAttempt& s : *stage->mutable_shards()) pieces.push_back(&s);
    } else {
      pieces.push_back(shard);
    }
    for (v1::ShardAttempt* piece : pieces) {
      delivered_at_.erase(ShardKey{change.job.id(), stage->kind(), piece->shard_index()});
      piece->set_state(v1::QUEUED);
      piece->clear_agent_id();
      *piece->mutable_not_before() = not_before;
    }
    *stage->mutable_not_before() = not_before;
    Emit(change, LogEvent(stage->kind(), "warning",
                          absl::StrCat(what, "; retrying in ", absl::FormatDuration(delay)), ""));
    RefreshStageAgents(stage);
    if (stage->agent_ids().empty()) {
      SetStageState(change, stage, v1::QUEUED, cause, what);
    }
    if (metrics_ != nullptr) metrics_->OnRetry(stage->kind(), cause);
    return;
  }
  shard->set_state(v1::FAILED);
  shard->clear_agent_id();
  delivered_at_.erase(ShardKey{change.job.id(), stage->kind(), shard->shard_index()});
  if (limit == 0) {
    FailJob(change, stage, cause, message);
  } else {
    FailJob(change, stage, v1::RETRIES_EXHAUSTED,
            absl::StrCat(what, "; no attempts left (", limit, ")"));
  }
}

void JobManager::OnShardSucceeded(Change& change, v1::Stage* stage) {
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
  if (IsFanOut(stage->kind()) && n > 1) {
    v1::ShardAttempt* join = FindShard(stage, n);
    if (join == nullptr) {
      join = stage->add_shards();
      join->set_shard_index(n);
      join->set_state(v1::QUEUED);
      Emit(change, LogEvent(stage->kind(), "info",
                            absl::StrCat("all ", n, " ", StageName(stage->kind()),
                                         " shards succeeded; joining"),
                            ""));
      return;
    }
    if (join->state() != v1::SUCCEEDED) return;
    stage_outputs.assign(join->outputs().begin(), join->outputs().end());
  } else {
    for (const v1::Artifact* a : outputs) stage_outputs.push_back(*a);
  }
  if (stage->kind() == v1::PRETRAIN && stage_outputs.empty()) {
    auto checkpoints = store_->ListCheckpoints(change.job.id());
    if (checkpoints.ok() && !checkpoints->empty()) stage_outputs.push_back(checkpoints->back().artifact());
  }
  stage->clear_outputs();
  for (v1::Artifact& a : stage_outputs) *stage->add_outputs() = std::move(a);
  stage->clear_agent_ids();
  SetStageState(change, stage, v1::SUCCEEDED, v1::FAILURE_CAUSE_UNSPECIFIED, "");
  Advance(change);
}

absl::Status JobManager::LoseAgentWork(const std::string& agent_id, const std::set<ShardKey>& keep,
                                       bool only_delivered_before_grace, const std::string& why) {
  const absl::Time now = clock_->Now();
  const absl::Duration grace = std::max(options_.lease_ttl, 2 * options_.heartbeat_interval);
  auto lost = [&](const std::string& job_id, const v1::Stage& stage, const v1::ShardAttempt& shard) {
    if (shard.state() != v1::RUNNING || shard.agent_id() != agent_id) return false;
    const ShardKey key{job_id, stage.kind(), shard.shard_index()};
    if (keep.contains(key)) return false;
    if (!only_delivered_before_grace) return true;
    auto d = delivered_at_.find(key);
    return d != delivered_at_.end() && d->second + grace <= now;
  };
  std::vector<std::string> affected;
  for (const auto& [job_id, job] : jobs_) {
    if (IsFinal(job.state())) continue;
    bool any = false;
    for (const v1::Stage& stage : job.stages()) {
      for (const v1::ShardAttempt& shard : stage.shards()) any = any || lost(job_id, stage, shard);
    }
    if (any) affected.push_back(job_id);
  }
  for (const std::string& job_id : affected) {
    Change change(jobs_[job_id]);
    for (v1::Stage& stage : *change.job.mutable_stages()) {
      for (int i = 0; i < stage.shards_size(); ++i) {
        v1::ShardAttempt* shard = stage.mutable_shards(i);
        if (!lost(job_id, stage, *shard)) continue;
        if (metrics_ != nullptr && only_delivered_before_grace) {
          metrics_->OnLeaseExpired(metrics::LeaseExpiryCause::kAssignment);
        }
        FailShard(change, &stage, shard, v1::AGENT_LOST, why);
      }
    }
    BERT_RETURN_IF_ERROR(Commit(change));
  }
  return absl::OkStatus();
}

absl::Status JobManager::Tick() {
  absl::MutexLock lock(&mu_);
  for (const std::string& agent_id : leases_.TakeExpired()) {
    AgentState& agent = agents_[agent_id];
    agent.outbox.clear();
    if (agent.info.healthy()) {
      agent.info.set_healthy(false);
      storage::StoreBatch batch;
      batch.PutAgent(agent.info);
      BERT_RETURN_IF_ERROR(store_->Write(batch));
    }
    if (metrics_ != nullptr) metrics_->OnLeaseExpired(metrics::LeaseExpiryCause::kAgentHeartbeat);
    BERT_RETURN_IF_ERROR(LoseAgentWork(
        agent_id, {}, false,
        absl::StrCat("agent ", agent_id, " lost: no heartbeat for ",
                     absl::FormatDuration(options_.lease_ttl))));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- agents

absl::StatusOr<v1::RegisterResponse> JobManager::Register(const v1::AgentInfo& agent) {
  if (agent.id().empty()) return absl::InvalidArgumentError("agent.id: required");
  if (agent.id().size() > 200) return absl::InvalidArgumentError("agent.id: longer than 200 bytes");
  if (agent.pools().empty()) return absl::InvalidArgumentError("agent.pools: name at least one pool");
  if (agent.resources().accelerator_count() < 0) {
    return absl::InvalidArgumentError("agent.resources.accelerator_count: must not be negative");
  }
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  AgentState& state = agents_[agent.id()];
  const auto registered_at = state.info.has_registered_at() ? state.info.registered_at() : ToProto(now);
  state.info = agent;
  state.info.set_healthy(true);
  *state.info.mutable_registered_at() = registered_at;
  *state.info.mutable_last_heartbeat() = ToProto(now);
  state.info.clear_assignment_ids();
  storage::StoreBatch batch;
  batch.PutAgent(state.info);
  BERT_RETURN_IF_ERROR(store_->Write(batch));
  leases_.Renew(agent.id());

  v1::RegisterResponse response;
  response.set_agent_id(agent.id());
  response.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  response.set_lease_ttl_ms(absl::ToInt64Milliseconds(options_.lease_ttl));
  std::set<ShardKey> undelivered;
  for (const v1::Assignment& a : state.outbox) {
    undelivered.insert(ShardKey{a.ref().job_id(), a.ref().stage(), a.ref().shard_index()});
  }
  for (const auto& [job_id, job] : jobs_) {
    if (IsFinal(job.state())) continue;
    for (const v1::Stage& stage : job.stages()) {
      for (const v1::ShardAttempt& shard : stage.shards()) {
        if (shard.state() != v1::RUNNING || shard.agent_id() != agent.id()) continue;
        const ShardKey key{job_id, stage.kind(), shard.shard_index()};
        if (undelivered.contains(key)) continue;
        delivered_at_[key] = now;  // the agent gets a grace period to list it
        v1::AssignmentRef* ref = response.add_live_assignments();
        ref->set_job_id(job_id);
        ref->set_stage(stage.kind());
        ref->set_shard_index(shard.shard_index());
        ref->set_attempt(shard.attempt());
      }
    }
  }
  ++work_generation_;
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> JobManager::Heartbeat(const v1::HeartbeatRequest& request) {
  absl::MutexLock lock(&mu_);
  v1::HeartbeatResponse response;
  auto it = agents_.find(request.agent_id());
  if (it == agents_.end() || !leases_.Live(request.agent_id())) {
    response.set_reregister(true);
    for (const v1::AssignmentRef& ref : request.running()) *response.add_cancel() = ref;
    return response;
  }
  const absl::Time deadline = leases_.Renew(request.agent_id());
  *it->second.info.mutable_last_heartbeat() = ToProto(clock_->Now());
  std::set<ShardKey> running;
  for (const v1::AssignmentRef& ref : request.running()) {
    running.insert(ShardKey{ref.job_id(), ref.stage(), ref.shard_index()});
    bool live = CheckLiveLocked(ref).ok();
    if (live) {
      v1::Job& job = jobs_[ref.job_id()];
      v1::Stage* stage = FindStage(&job, ref.stage());
      v1::ShardAttempt* shard = FindShard(stage, ref.shard_index());
      live = shard->agent_id() == request.agent_id();
      // Volatile: renewed in memory only; a restart gives every lease a fresh ttl.
      if (live) *shard->mutable_lease_deadline() = ToProto(deadline);
    }
    if (!live) *response.add_cancel() = ref;
  }
  BERT_RETURN_IF_ERROR(LoseAgentWork(request.agent_id(), running, true,
                                     absl::StrCat("agent ", request.agent_id(),
                                                  " no longer runs it (not in its heartbeat)")));
  return response;
}

v1::Assignment JobManager::BuildAssignment(const v1::Job& job, const v1::Stage& stage,
                                           const v1::ShardAttempt& shard, const AgentState& agent,
                                           const std::vector<std::string>& gang_agents) const {
  v1::Assignment a;
  v1::AssignmentRef* ref = a.mutable_ref();
  ref->set_job_id(job.id());
  ref->set_stage(stage.kind());
  ref->set_shard_index(shard.shard_index());
  ref->set_attempt(shard.attempt());
  a.set_shard_count(stage.shard_count());
  *a.mutable_spec() = job.spec();
  std::vector<v1::Artifact> inputs;
  for (const v1::Stage& earlier : job.stages()) {
    if (earlier.kind() >= stage.kind()) break;
    inputs.insert(inputs.end(), earlier.outputs().begin(), earlier.outputs().end());
  }
  if (IsFanOut(stage.kind()) && shard.shard_index() == stage.shard_count()) {
    for (const v1::ShardAttempt& piece : stage.shards()) {
      if (piece.shard_index() < stage.shard_count()) {
        inputs.insert(inputs.end(), piece.outputs().begin(), piece.outputs().end());
      }
    }
  }
  if (stage.kind() == v1::PRETRAIN) {
    auto checkpoints = store_->ListCheckpoints(job.id());
    if (checkpoints.ok()) {
      int n = 0;
      for (auto it = checkpoints->rbegin(); it != checkpoints->rend() && n < kResumeCheckpoints;
           ++it, ++n) {
        inputs.push_back(it->artifact());
      }
    }
  }
  const bool shared = agent.info.shared_filesystem() && !options_.artifact_root.empty();
  for (v1::Artifact& input : inputs) {
    if (shared && absl::StartsWith(input.uri(), "bertd://")) {
      input.set_uri(absl::StrCat("file://", options_.artifact_root, "/", input.id()));
    }
    *a.add_inputs() = std::move(input);
  }
  if (auto deadline = leases_.Deadline(agent.info.id())) *a.mutable_lease_deadline() = ToProto(*deadline);
  if (stage.kind() == v1::PRETRAIN) {
    const int devices = std::max(1, job.spec().resources().devices());
    v1::Rendezvous* rv = a.mutable_rendezvous();
    std::string master = "127.0.0.1";
    auto master_agent = agents_.find(gang_agents.empty() ? agent.info.id() : gang_agents.front());
    if (master_agent != agents_.end()) {
      if (!master_agent->second.info.address().empty()) {
        master = master_agent->second.info.address();
      } else if (gang_agents.size() > 1 && !master_agent->second.info.hostname().empty()) {
        master = master_agent->second.info.hostname();
      }
    }
    rv->set_master_address(master);
    rv->set_master_port(options_.rendezvous_base_port +
                        static_cast<int>((std::hash<std::string>{}(job.id()) + shard.attempt()) % 1000));
    rv->set_world_size(std::max(1, stage.shard_count()) * devices);
    rv->set_node_rank(shard.shard_index());
    rv->set_local_world_size(devices);
  }
  if (shared) a.set_artifact_root(options_.artifact_root);
  return a;
}

absl::Status JobManager::ScheduleLocked() {
  const absl::Time now = clock_->Now();
  std::vector<PendingTask> queue;
  std::map<std::string, AgentRoom> rooms;
  for (const auto& [id, agent] : agents_) {
    if (!leases_.Live(id)) continue;
    AgentRoom room;
    room.id = id;
    room.pools.assign(agent.info.pools().begin(), agent.info.pools().end());
    room.accelerator = agent.info.resources().accelerator();
    room.free_accelerators = agent.info.resources().accelerator_count();
    room.free_cpu_slots = 1;
    if (auto slots = agent.info.labels().find("slots"); slots != agent.info.labels().end()) {
      int n = 0;
      if (absl::SimpleAtoi(slots->second, &n) && n > 0) room.free_cpu_slots = n;
    }
    rooms[id] = std::move(room);
  }
  for (const auto& [job_id, job] : jobs_) {
    if (IsFinal(job.state())) continue;
    for (const v1::Stage& stage : job.stages()) {
      const v1::AcceleratorKind acc = AcceleratorOf(job.spec(), stage.kind());
      for (const v1::ShardAttempt& shard : stage.shards()) {
        if (shard.state() != v1::RUNNING) continue;
        auto room = rooms.find(shard.agent_id());
        if (room == rooms.end()) continue;
        if (acc == v1::CPU) {
          --room->second.free_cpu_slots;
        } else {
          room->second.free_accelerators -= std::max(1, job.spec().resources().devices());
        }
      }
    }
    const v1::Stage* stage = CurrentStage(job);
    if (stage == nullptr || IsFinal(stage->state())) continue;
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
  std::vector<AgentRoom> agent_rooms;
  for (auto& [id, room] : rooms) agent_rooms.push_back(room);
  const std::vector<Placement> placements = Schedule(queue, std::move(agent_rooms));

  // Commit per job (a job may get several placements at once).
  std::map<std::string, std::vector<const Placement*>> by_job;
  for (const Placement& p : placements) by_job[queue[p.task].job_id].push_back(&p);
  for (const auto& [job_id, job_placements] : by_job) {
    Change change(jobs_.at(job_id));
    std::vector<std::tuple<v1::StageKind, int32_t, std::string, std::vector<std::string>>> started;
    for (const Placement* p : job_placements) {
      const PendingTask& task = queue[p->task];
      v1::Stage* stage = FindStage(&change.job, task.stage);
      for (size_t i = 0; i < task.shards.size(); ++i) {
        v1::ShardAttempt* shard = FindShard(stage, task.shards[i]);
        shard->set_attempt(shard->attempt() + 1);
        shard->set_state(v1::RUNNING);
        shard->set_agent_id(p->agent_ids[i]);
        if (auto deadline = leases_.Deadline(p->agent_ids[i])) {
          *shard->mutable_lease_deadline() = ToProto(*deadline);
        }
        started.emplace_back(task.stage, task.shards[i], p->agent_ids[i], p->agent_ids);
        if (metrics_ != nullptr && shard->attempt() == 1) {
          metrics_->ObserveQueueWait(task.stage, absl::ToDoubleSeconds(now - FromProto(stage->queued_at())));
        }
      }
      RefreshStageAgents(stage);
      SetStageState(change, stage, v1::RUNNING, v1::FAILURE_CAUSE_UNSPECIFIED, "");
    }
    if (change.job.state() == v1::QUEUED) {
      SetJobState(change, v1::RUNNING, v1::FAILURE_CAUSE_UNSPECIFIED, "");
    }
    for (const auto& [kind, index, agent_id, gang] : started) {
      v1::Stage* stage = FindStage(&change.job, kind);
      const v1::ShardAttempt* shard = FindShard(stage, index);
      Emit(change, LogEvent(kind, "info",
                            absl::StrCat(StageName(kind), " piece ", index, " attempt ",
                                         shard->attempt(), " started on agent ", agent_id),
                            agent_id));
      change.deliveries.emplace_back(
          agent_id, BuildAssignment(change.job, *stage, *shard, agents_.at(agent_id),
                                    IsGang(kind) ? gang : std::vector<std::string>{}));
    }
    BERT_RETURN_IF_ERROR(Commit(change));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Assignment>> JobManager::Acquire(const std::string& agent_id,
                                                                  absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  absl::MutexLock lock(&mu_);
  if (!agents_.contains(agent_id) || !leases_.Live(agent_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("agent '", agent_id, "' is not registered (or its lease expired): register"));
  }
  for (;;) {
    for (int round = 0; round < 2; ++round) {
      std::vector<v1::Assignment>& outbox = agents_[agent_id].outbox;
      while (!outbox.empty()) {
        v1::Assignment a = std::move(outbox.front());
        outbox.erase(outbox.begin());
        if (!CheckLiveLocked(a.ref()).ok()) continue;
        delivered_at_[ShardKey{a.ref().job_id(), a.ref().stage(), a.ref().shard_index()}] =
            clock_->Now();
        return std::optional<v1::Assignment>(std::move(a));
      }
      if (round == 0) BERT_RETURN_IF_ERROR(ScheduleLocked());
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) return std::optional<v1::Assignment>();
    // Wake on any change of the queues, or every second for backoffs that end.
    const int64_t generation = work_generation_;
    struct WaitArg {
      const int64_t* current;
      int64_t seen;
    } arg{&work_generation_, generation};
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](WaitArg* w) { return *w->current != w->seen; }, &arg),
                          std::min(deadline, now + absl::Seconds(1)));
    if (!agents_.contains(agent_id) || !leases_.Live(agent_id)) return std::optional<v1::Assignment>();
  }
}

// ---------------------------------------------------------------- reports

absl::StatusOr<v1::ReportStageResponse> JobManager::Report(const v1::ReportStageRequest& request) {
  if (request.reports_size() > kMaxReportsPerCall) {
    return absl::InvalidArgumentError(
        absl::StrCat("reports: ", request.reports_size(), " is over the limit of ", kMaxReportsPerCall));
  }
  const v1::AssignmentRef& ref = request.ref();
  absl::MutexLock lock(&mu_);
  v1::ReportStageResponse response;
  auto it = jobs_.find(ref.job_id());
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", ref.job_id(), "' not found"));
  if (it->second.state() == v1::CANCELLED) {
    response.set_cancel(true);
    return response;
  }
  BERT_RETURN_IF_ERROR(CheckLiveLocked(ref));
  if (request.reports().empty()) return response;
  Change change(it->second);
  v1::Stage* stage = FindStage(&change.job, ref.stage());
  const v1::ShardAttempt* shard = FindShard(stage, ref.shard_index());
  const auto now = ToProto(clock_->Now());
  for (const v1::StageReport& report : request.reports()) {
    v1::Event event;
    switch (report.body_case()) {
      case v1::StageReport::kProgress: {
        *stage->mutable_progress() = report.progress();
        v1::StageProgress* p = event.mutable_progress();
        p->set_stage(ref.stage());
        *p->mutable_progress() = report.progress();
        break;
      }
      case v1::StageReport::kMetric: {
        v1::MetricPoint* m = event.mutable_metric();
        *m = report.metric();
        if (m->name().empty()) return absl::InvalidArgumentError("reports.metric.name: required");
        m->set_stage(ref.stage());
        if (!m->has_time()) *m->mutable_time() = now;
        (*change.job.mutable_latest_metrics())[m->name()] = m->value();
        if (metrics_ != nullptr) metrics_->SetJobMetric(ref.job_id(), m->name(), m->value(), m->step());
        break;
      }
      case v1::StageReport::kLog: {
        v1::LogLine* log = event.mutable_log();
        *log = report.log();
        if (log->message().size() > kMaxLogBytes) log->mutable_message()->resize(kMaxLogBytes);
        log->set_stage(ref.stage());
        if (log->agent_id().empty()) log->set_agent_id(shard->agent_id());
        if (!log->has_time()) *log->mutable_time() = now;
        break;
      }
      case v1::StageReport::kCheckpoint: {
        v1::CheckpointRecord* record = event.mutable_checkpoint();
        *record = report.checkpoint();
        record->set_job_id(ref.job_id());
        if (!record->has_created_at()) *record->mutable_created_at() = now;
        v1::Artifact* artifact = record->mutable_artifact();
        if (artifact->name().empty()) artifact->set_name(absl::StrCat("checkpoint-", record->step()));
        if (artifact->id().empty()) {
          artifact->set_id(absl::StrCat(ref.job_id(), "/pretrain/", artifact->name()));
        }
        artifact->set_produced_by(ref.stage());
        if (!artifact->has_created_at()) *artifact->mutable_created_at() = now;
        change.batch.PutCheckpoint(*record);
        change.batch.PutArtifact(*artifact);
        break;
      }
      default:
        return absl::InvalidArgumentError("reports: a report with no body");
    }
    Emit(change, std::move(event));
  }
  BERT_RETURN_IF_ERROR(Commit(change));
  return response;
}

absl::Status JobManager::Complete(const v1::CompleteStageRequest& request) {
  const v1::AssignmentRef& ref = request.ref();
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(ref.job_id());
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", ref.job_id(), "' not found"));
  if (it->second.state() == v1::CANCELLED) return absl::OkStatus();
  BERT_RETURN_IF_ERROR(CheckLiveLocked(ref));
  for (const v1::Artifact& a : request.outputs()) {
    if (a.name().empty()) return absl::InvalidArgumentError("outputs.name: required");
    if (a.uri().empty()) return absl::InvalidArgumentError(absl::StrCat("outputs[", a.name(), "].uri: required"));
  }
  Change change(it->second);
  v1::Stage* stage = FindStage(&change.job, ref.stage());
  v1::ShardAttempt* shard = FindShard(stage, ref.shard_index());
  const std::string agent_id = shard->agent_id();
  delivered_at_.erase(ShardKey{ref.job_id(), ref.stage(), ref.shard_index()});
  if (metrics_ != nullptr && shard->has_lease_deadline()) {
    // Duration is approximate: from the stage's start to now.
    metrics_->ObserveStageDuration(ref.stage(), request.success() ? v1::SUCCEEDED : v1::FAILED,
                                   absl::ToDoubleSeconds(clock_->Now() - FromProto(stage->started_at())));
  }
  if (request.success()) {
    const auto now = ToProto(clock_->Now());
    shard->clear_outputs();
    for (v1::Artifact a : request.outputs()) {
      if (a.id().empty()) {
        const bool piece = IsFanOut(ref.stage()) && ref.shard_index() < stage->shard_count() &&
                           stage->shard_count() > 1;
        a.set_id(absl::StrCat(ref.job_id(), "/", StageName(ref.stage()), "/",
                              piece ? absl::StrCat("shard-", ref.shard_index(), "/") : "", a.name()));
      }
      a.set_produced_by(ref.stage());
      if (!a.has_created_at()) *a.mutable_created_at() = now;
      change.batch.PutArtifact(a);
      *shard->add_outputs() = std::move(a);
    }
    shard->set_state(v1::SUCCEEDED);
    shard->clear_agent_id();
    Emit(change, LogEvent(ref.stage(), "info",
                          absl::StrCat(StageName(ref.stage()), " piece ", ref.shard_index(),
                                       " attempt ", ref.attempt(), " succeeded"),
                          agent_id));
    RefreshStageAgents(stage);
    OnShardSucceeded(change, stage);
  } else {
    FailShard(change, stage, shard, request.failure_cause(), request.message());
  }
  return Commit(change);
}

absl::Status JobManager::RecordArtifact(const v1::Artifact& artifact) {
  storage::StoreBatch batch;
  batch.PutArtifact(artifact);
  return store_->Write(batch);
}

}  // namespace bert::server
