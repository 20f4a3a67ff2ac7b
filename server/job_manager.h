// The controller's core, wired: it holds the active jobs, the agent registry
// and the lock, and commits. The rules live in the parts it calls:
//   job_state_machine.h   job + event -> changes (transitions, retries, events)
//   agent_registry.h      agents, leases, their pieces and outboxes
//   assignment_builder.h  placement -> assignment (inputs, rendezvous)
//   report_intake.h       an agent's reports checked against its live attempt
//   scheduler.h           queue + free rooms -> placements (pure)
//
// Every state change is one StoreBatch holding the new job record and the
// events that describe it (dense per-job seq from 1), written before the
// in-memory state changes and before the events are published, so a crash
// never separates a change from its events and watchers never see an event
// that is not durable. Reports append their events without rewriting the job;
// a restart replays them onto the stored job.
//
// Only unfinished jobs are held in memory; finished ones are read from the
// store on demand. No RPC's work grows with the number of jobs ever submitted.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "bert/v1/job_service.pb.h"
#include "metrics/controller_metrics.h"
#include "server/agent_registry.h"
#include "server/assignment_builder.h"
#include "server/checkpoint_retention.h"
#include "server/clock.h"
#include "server/event_bus.h"
#include "server/job_collector.h"
#include "server/job_state_machine.h"
#include "server/retry_policy.h"
#include "storage/store.h"
#include "storage/store_batch.h"

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
  // bertd --shared-output-root (AssignmentBuilderOptions::shared_output_root).
  std::string shared_output_root;
  // Whether spec paths must exist on this host (true for the single-machine default).
  bool check_spec_paths = true;
  // Report events appended before the job record is rewritten with them (bounds
  // what a restart replays).
  int max_unsaved_events = 1000;
  // Finished jobs older than this are deleted by the collector (zero: never);
  // uploaded inputs no job references are kept this long (JobCollector).
  absl::Duration finished_job_retention = absl::ZeroDuration();
  absl::Duration unreferenced_input_grace = absl::Hours(1);
};

// Whether the caller of an agent RPC may act as `agent_id`; null: anyone.
using MayActAs = std::function<bool(const std::string& agent_id)>;

struct SubmitResult {
  v1::Job job;
  bool already_existed = false;
};

// Thread-safe: one mutex guards all state. `store`, `bus`, `clock` and `metrics`
// (may be null) must outlive it.
class JobManager {
 public:
  // Loads every unfinished job and every agent from the store and reconciles
  // running work: each running piece waits one lease for its agent to come
  // back, else it is re-queued as AGENT_LOST.
  static absl::StatusOr<std::unique_ptr<JobManager>> Create(storage::Store* store, EventBus* bus,
                                                            const Clock* clock,
                                                            JobManagerOptions options,
                                                            metrics::ControllerMetrics* metrics = nullptr);

  // --- Job API (users) ---
  // `admin`: the submitter sees every job (a warm start may name any; else
  // only its own: server/warm_start.h).
  absl::StatusOr<SubmitResult> Submit(const v1::SubmitJobRequest& request,
                                      const std::string& subject, bool admin = false)
      ABSL_LOCKS_EXCLUDED(mu_);
  v1::ValidateSpecResponse Validate(const v1::ValidateSpecRequest& request) const;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Every unfinished job (the metrics feed's view), without touching the store.
  std::vector<v1::Job> ActiveJobs() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id, const std::string& reason)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<v1::AgentInfo> ListAgents(const std::string& pool) const ABSL_LOCKS_EXCLUDED(mu_);
  // True when the job exists and has reached a final state.
  absl::StatusOr<bool> IsFinished(const std::string& job_id) const ABSL_LOCKS_EXCLUDED(mu_);

  // --- Lifecycle verbs (job_lifecycle.cc; the rules in JobStateMachine) ---
  // A FAILED or CANCELLED job runs again from its kept stages and newest
  // checkpoint; FAILED_PRECONDITION for any other.
  absl::StatusOr<v1::Job> Retry(const std::string& job_id, const std::string& subject)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Pauses a QUEUED or RUNNING job (pre-training checkpoints and stops, its
  // devices are released; the job is PAUSED once nothing runs).
  absl::StatusOr<v1::Job> Pause(const std::string& job_id, const std::string& subject,
                                const std::string& reason) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Job> Resume(const std::string& job_id, const std::string& subject)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Deletes a finished (or PAUSED) job: delete_requested is written first,
  // then the files go, then the records (JobCollector). FAILED_PRECONDITION
  // for a queued or running job.
  absl::StatusOr<v1::DeleteJobResponse> Delete(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  // One collector pass: finishes interrupted deletes, deletes finished jobs
  // past their retention, removes unreferenced uploaded inputs. Returns the
  // number of jobs deleted. bertd runs it at startup and periodically.
  absl::StatusOr<int> CollectGarbage() ABSL_LOCKS_EXCLUDED(mu_);

  // --- Agent API ---
  // Agents are remembered (and stored) for good, so registrations are
  // bounded: every field of `agent` by size, at most kMaxAgents ids in all,
  // and at most kMaxAgentsPerPoolToken ids starting with `pool_prefix` (the
  // caller's "prefix-*" token; empty: none) -- RESOURCE_EXHAUSTED past them
  // for an id not yet known.
  static constexpr size_t kMaxAgents = 100'000;
  static constexpr size_t kMaxAgentsPerPoolToken = 10'000;
  absl::StatusOr<v1::RegisterResponse> Register(const v1::AgentInfo& agent,
                                                const std::string& pool_prefix = "")
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Waits up to `wait` (real time) for an assignment for this agent.
  absl::StatusOr<std::optional<v1::Assignment>> Acquire(const std::string& agent_id,
                                                        absl::Duration wait) ABSL_LOCKS_EXCLUDED(mu_);
  // `may_act_as`: whether the caller may act as an agent id (the RPC layer's
  // CheckActsAs; null: anyone, e.g. an admin). A report, completion or upload
  // for a piece run by an agent the caller may not act as is PERMISSION_DENIED.
  absl::StatusOr<v1::ReportStageResponse> Report(const v1::ReportStageRequest& request,
                                                 const MayActAs& may_act_as = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Complete(const v1::CompleteStageRequest& request,
                        const MayActAs& may_act_as = nullptr) ABSL_LOCKS_EXCLUDED(mu_);
  // OK when `ref` names a live attempt (an upload may proceed).
  absl::Status CheckLive(const v1::AssignmentRef& ref, const MayActAs& may_act_as = nullptr) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // OK when unfinished job `job_id` has a running piece on an agent the caller
  // may act as (it may then fetch the job's artifacts), or `may_act_as` is
  // null; PERMISSION_DENIED otherwise.
  absl::Status CheckRunsJob(const std::string& job_id, const MayActAs& may_act_as) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records an artifact uploaded through the controller.
  absl::Status RecordArtifact(const v1::Artifact& artifact);

  // Expires leases whose heartbeats stopped and re-queues their work; the
  // server calls it periodically, tests after moving the fake clock.
  absl::Status Tick() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  JobManager(storage::Store* store, EventBus* bus, const Clock* clock, JobManagerOptions options,
             metrics::ControllerMetrics* metrics);

  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replays the report events stored after the job record was last written.
  absl::Status ReplayReports(v1::Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the change (and `deliveries`, assignments to hand out once durable),
  // then updates memory, the registry and metrics, and publishes its events.
  absl::Status Commit(JobStateMachine& change,
                      std::vector<std::pair<std::string, v1::Assignment>> deliveries = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Commit with more writes (`batch`) in the same atomic store batch.
  absl::Status CommitWith(JobStateMachine& change, storage::StoreBatch batch,
                          std::vector<std::pair<std::string, v1::Assignment>> deliveries)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Brings the registry's view of one job's running pieces up to date.
  void SyncPieces(const v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks each queued stage that no live agent could ever run with the reason
  // (scheduler_feasibility.h), and clears it once one could; at most once a
  // second (Tick calls it).
  absl::Status UpdateWaitingReasonsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails, as AGENT_LOST, the pieces running on `agent_id` except `keep`
  // (with `only_after_grace`, only those delivered more than a grace ago).
  absl::Status LoseAgentWork(const std::string& agent_id, const std::set<PieceKey>& keep,
                             bool only_after_grace, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job, in memory when unfinished, else from the store; NOT_FOUND names it.
  absl::StatusOr<v1::Job> LookupLocked(const std::string& job_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const v1::Job* Active(const std::string& job_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<v1::Artifact> NewestCheckpoint(const std::string& job_id) const;
  absl::StatusOr<std::string> NewJobId() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `job` with delete_requested and forgets it in memory (a paused job).
  absl::Status MarkDeleteLocked(v1::Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An unfinished job whose warm start (model.from: job:<id>) reads `job_id`'s
  // artifacts, if any: such a job must not be deleted yet.
  std::optional<std::string> WarmStartDependentLocked(const std::string& job_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::Store* const store_;
  EventBus* const bus_;
  const Clock* const clock_;
  const JobManagerOptions options_;
  metrics::ControllerMetrics* const metrics_;
  const AssignmentBuilder builder_;
  // training.save_total_limit on the controller's checkpoints (under mu_).
  const CheckpointRetention retention_;
  // DeleteJob's file and record deletion, and the collector's passes.
  const JobCollector collector_;

  mutable absl::Mutex mu_;
  // Unfinished jobs; a job leaves when it reaches a final state.
  std::map<std::string, v1::Job> active_ ABSL_GUARDED_BY(mu_);
  // Active jobs whose current stage has queued pieces (the scheduler's input).
  std::set<std::string> waiting_ ABSL_GUARDED_BY(mu_);
  // Report events appended since each active job's record was last written.
  std::map<std::string, int> unsaved_events_ ABSL_GUARDED_BY(mu_);
  AgentRegistry agents_ ABSL_GUARDED_BY(mu_);
  int64_t work_generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped when queues change
  absl::Time next_waiting_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace bert::server
