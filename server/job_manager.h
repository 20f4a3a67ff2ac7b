// The controller's core: job and stage state machines, agent registry and
// leases, scheduling and retries. Plain class, no gRPC: the services in
// job_service.h and agent_service.h translate RPCs into these calls.
//
// Every state change is one StoreBatch holding the new job record and the
// events that describe it (dense per-job seq from 1), written before the
// in-memory state changes and before the events are published, so a crash
// never separates a change from its events and watchers never see an event
// that is not durable.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "bert/v1/job_service.pb.h"
#include "server/clock.h"
#include "metrics/controller_metrics.h"
#include "server/event_bus.h"
#include "server/lease_tracker.h"
#include "server/retry_policy.h"
#include "storage/store.h"

namespace bert::server {

struct JobManagerOptions {
  absl::Duration lease_ttl = absl::Seconds(15);
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // After a controller restart every known agent's lease lasts at least this
  // long: agents need time to notice the restart and reconnect (gRPC backs off
  // between connection attempts), and their stages keep running meanwhile.
  absl::Duration restart_grace = absl::Seconds(30);
  RetryPolicy retry;
  // Controller's artifact directory; agents with a shared filesystem read it directly.
  std::string artifact_root;
  // Whether spec paths must exist on this host (true for the single-machine default).
  bool check_spec_paths = true;
  // First port of the gang rendezvous range (c10d TCPStore on rank 0's host).
  int rendezvous_base_port = 29500;
};

struct SubmitResult {
  v1::Job job;
  bool already_existed = false;
};

// Thread-safe: one mutex guards all state. `store`, `bus`, `clock` and `metrics`
// (may be null) must outlive it.
class JobManager {
 public:
  // Loads every job and agent from the store and reconciles running work: each
  // running piece waits one lease for its agent to come back, else it is
  // re-queued as AGENT_LOST.
  static absl::StatusOr<std::unique_ptr<JobManager>> Create(storage::Store* store, EventBus* bus,
                                                            const Clock* clock,
                                                            JobManagerOptions options,
                                                            metrics::ControllerMetrics* metrics = nullptr);

  // --- Job API (users) ---
  absl::StatusOr<SubmitResult> Submit(const v1::SubmitJobRequest& request,
                                      const std::string& subject);
  v1::ValidateSpecResponse Validate(const v1::ValidateSpecRequest& request) const;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) const;
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request) const;
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id, const std::string& reason);
  std::vector<v1::AgentInfo> ListAgents(const std::string& pool) const;
  // True when the job exists and has reached a final state.
  absl::StatusOr<bool> IsFinished(const std::string& job_id) const;

  // --- Agent API ---
  absl::StatusOr<v1::RegisterResponse> Register(const v1::AgentInfo& agent);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  // Waits up to `wait` (real time) for an assignment for this agent.
  absl::StatusOr<std::optional<v1::Assignment>> Acquire(const std::string& agent_id,
                                                        absl::Duration wait);
  absl::StatusOr<v1::ReportStageResponse> Report(const v1::ReportStageRequest& request);
  absl::Status Complete(const v1::CompleteStageRequest& request);
  // OK when `ref` names a live attempt (an upload may proceed).
  absl::Status CheckLive(const v1::AssignmentRef& ref) const;
  // Records an artifact uploaded through the controller.
  absl::Status RecordArtifact(const v1::Artifact& artifact);

  // Expires leases whose heartbeats stopped and re-queues their work; the
  // server calls it periodically, tests after moving the fake clock.
  absl::Status Tick();

 private:
  struct ShardKey {
    std::string job_id;
    v1::StageKind stage;
    int32_t shard;
    auto operator<=>(const ShardKey&) const = default;
  };
  struct AgentState {
    v1::AgentInfo info;
    std::vector<v1::Assignment> outbox;  // placed, not yet acquired
  };
  // A change in progress: the job copy to commit, the batch and the events.
  struct Change;

  JobManager(storage::Store* store, EventBus* bus, const Clock* clock, JobManagerOptions options,
             metrics::ControllerMetrics* metrics);

  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Commit(Change& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(Change& change, v1::Event event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetJobState(Change& change, v1::State to, v1::FailureCause cause,
                   const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetStageState(Change& change, v1::Stage* stage, v1::State to, v1::FailureCause cause,
                     const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes the first unfinished stage current (creating its pieces), or finishes the job.
  void Advance(Change& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnShardSucceeded(Change& change, v1::Stage* stage) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailShard(Change& change, v1::Stage* stage, v1::ShardAttempt* shard,
                 v1::FailureCause cause, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailJob(Change& change, v1::Stage* failed, v1::FailureCause cause,
               const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoseAgentWork(const std::string& agent_id, const std::set<ShardKey>& keep,
                             bool only_delivered_before_grace, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Assignment BuildAssignment(const v1::Job& job, const v1::Stage& stage,
                                 const v1::ShardAttempt& shard, const AgentState& agent,
                                 const std::vector<std::string>& gang_agents) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckLiveLocked(const v1::AssignmentRef& ref) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewJobId() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::Store* const store_;
  EventBus* const bus_;
  const Clock* const clock_;
  const JobManagerOptions options_;
  metrics::ControllerMetrics* const metrics_;

  mutable absl::Mutex mu_;
  std::map<std::string, v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, AgentState> agents_ ABSL_GUARDED_BY(mu_);
  LeaseTracker leases_ ABSL_GUARDED_BY(mu_);
  // When each running piece was handed to its agent (or the controller
  // restarted): a piece the agent's heartbeat does not list after a grace
  // period is lost.
  std::map<ShardKey, absl::Time> delivered_at_ ABSL_GUARDED_BY(mu_);
  int64_t work_generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped when queues change
};

}  // namespace bert::server
