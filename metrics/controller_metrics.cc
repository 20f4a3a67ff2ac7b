#include "metrics/controller_metrics.h"

#include "metrics/histogram_buckets.h"

namespace bert::metrics {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

constexpr v1::State kJobStates[] = {v1::QUEUED, v1::RUNNING, v1::PAUSED, v1::SUCCEEDED, v1::FAILED,
                                    v1::CANCELLED};
constexpr v1::State kStageStates[] = {v1::QUEUED, v1::RUNNING,   v1::PAUSED, v1::SUCCEEDED,
                                      v1::FAILED, v1::CANCELLED, v1::SKIPPED};
constexpr v1::StageKind kStages[] = {v1::PREPARE, v1::TOKENIZER, v1::PREPROCESS, v1::PRETRAIN,
                                     v1::EXPORT};
constexpr v1::FailureCause kRetryableCauses[] = {v1::AGENT_LOST, v1::WORKER_CRASHED,
                                                 v1::OUT_OF_MEMORY, v1::ARTIFACT_CORRUPT};

std::string LeaseCauseLabel(LeaseExpiryCause cause) {
  return cause == LeaseExpiryCause::kAgentHeartbeat ? "agent_heartbeat" : "assignment";
}

std::string DirectionLabel(ArtifactDirection direction) {
  return direction == ArtifactDirection::kUpload ? "upload" : "download";
}

}  // namespace

ControllerMetrics::ControllerMetrics(absl::Duration job_retention)
    : registry_(std::make_shared<prometheus::Registry>()),
      jobs_by_state_(
          BuildGauge().Name("bert_controller_jobs").Help("Jobs by state.").Register(*registry_)),
      job_transitions_(BuildCounter()
                           .Name("bert_controller_job_transitions_total")
                           .Help("Job state transitions, by the state entered.")
                           .Register(*registry_)),
      stages_by_state_(BuildGauge()
                           .Name("bert_controller_stages")
                           .Help("Stages of all jobs, by stage kind and state.")
                           .Register(*registry_)),
      queue_length_(BuildGauge()
                        .Name("bert_controller_queue_length")
                        .Help("Stage pieces waiting for an agent, by pool.")
                        .Register(*registry_)),
      unschedulable_jobs_(BuildGauge()
                              .Name("bert_controller_unschedulable_jobs")
                              .Help("Unfinished jobs whose queued stage no live agent could ever "
                                    "run (pool, accelerator kind or count, hosts), by pool.")
                              .Register(*registry_)),
      queue_wait_(BuildHistogram()
                      .Name("bert_controller_queue_wait_seconds")
                      .Help("Time from a stage becoming runnable to an agent taking it.")
                      .Register(*registry_)),
      stage_duration_(BuildHistogram()
                          .Name("bert_controller_stage_duration_seconds")
                          .Help("Wall time of finished stage attempts, by stage and result.")
                          .Register(*registry_)),
      agents_(BuildGauge()
                  .Name("bert_controller_agents")
                  .Help("Registered agents by pool and health.")
                  .Register(*registry_)),
      lease_expiries_(BuildCounter()
                          .Name("bert_controller_lease_expiries_total")
                          .Help("Leases that expired, by cause.")
                          .Register(*registry_)),
      retries_(BuildCounter()
                   .Name("bert_controller_retries_total")
                   .Help("Stage attempts retried, by stage and failure cause.")
                   .Register(*registry_)),
      rpc_requests_(BuildCounter()
                        .Name("bert_controller_grpc_requests_total")
                        .Help("gRPC requests served, by method and status code.")
                        .Register(*registry_)),
      rpc_duration_(BuildHistogram()
                        .Name("bert_controller_grpc_request_duration_seconds")
                        .Help("gRPC request latency, by method.")
                        .Register(*registry_)),
      store_write_(BuildHistogram()
                       .Name("bert_controller_store_write_duration_seconds")
                       .Help("Latency of synced RocksDB write batches.")
                       .Register(*registry_)
                       .Add({}, StoreWriteBuckets())),
      store_size_(BuildGauge()
                      .Name("bert_controller_store_size_bytes")
                      .Help("Live size of the RocksDB store on disk.")
                      .Register(*registry_)
                      .Add({})),
      artifact_bytes_(BuildCounter()
                          .Name("bert_controller_artifact_bytes_total")
                          .Help("Artifact bytes streamed through the controller, by direction.")
                          .Register(*registry_)),
      jobs_(*registry_, "bert_controller_job", job_retention) {
  // Every bounded series exists from the start (at zero), so dashboards and
  // rate() see them before the first event.
  for (v1::State state : kJobStates) {
    JobsGauge(state);
    job_transitions_.Add({{"to", StateLabel(state)}});
  }
  for (v1::StageKind stage : kStages) {
    for (v1::State state : kStageStates) StagesGauge(stage, state);
    queue_wait_.Add({{"stage", StageLabel(stage)}}, QueueWaitBuckets());
    for (v1::State result : {v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}) {
      stage_duration_.Add({{"stage", StageLabel(stage)}, {"result", StateLabel(result)}},
                          StageDurationBuckets());
    }
    for (v1::FailureCause cause : kRetryableCauses) {
      retries_.Add({{"stage", StageLabel(stage)}, {"cause", CauseLabel(cause)}});
    }
  }
  for (LeaseExpiryCause cause :
       {LeaseExpiryCause::kAgentHeartbeat, LeaseExpiryCause::kAssignment}) {
    lease_expiries_.Add({{"cause", LeaseCauseLabel(cause)}});
  }
  for (ArtifactDirection direction : {ArtifactDirection::kUpload, ArtifactDirection::kDownload}) {
    artifact_bytes_.Add({{"direction", DirectionLabel(direction)}});
  }
}

prometheus::Gauge& ControllerMetrics::JobsGauge(v1::State state) {
  return jobs_by_state_.Add({{"state", StateLabel(state)}});
}

prometheus::Gauge& ControllerMetrics::StagesGauge(v1::StageKind stage, v1::State state) {
  return stages_by_state_.Add({{"stage", StageLabel(stage)}, {"state", StateLabel(state)}});
}

void ControllerMetrics::SetJobsByState(v1::State state, int64_t count) {
  JobsGauge(state).Set(static_cast<double>(count));
}

void ControllerMetrics::OnJobStateChanged(v1::State from, v1::State to) {
  if (from == to) return;
  if (from != v1::STATE_UNSPECIFIED) JobsGauge(from).Decrement();
  if (to != v1::STATE_UNSPECIFIED) {
    JobsGauge(to).Increment();
    job_transitions_.Add({{"to", StateLabel(to)}}).Increment();
  }
}

void ControllerMetrics::SetStagesByState(v1::StageKind stage, v1::State state, int64_t count) {
  StagesGauge(stage, state).Set(static_cast<double>(count));
}

void ControllerMetrics::OnStageStateChanged(v1::StageKind stage, v1::State from, v1::State to) {
  if (from == to) return;
  if (from != v1::STATE_UNSPECIFIED) StagesGauge(stage, from).Decrement();
  if (to != v1::STATE_UNSPECIFIED) StagesGauge(stage, to).Increment();
}

void ControllerMetrics::SetQueueLength(std::string_view pool, int64_t length) {
  queue_length_.Add({{"pool", pools_.Admit(pool)}}).Set(static_cast<double>(length));
}

void ControllerMetrics::SetUnschedulableJobs(std::string_view pool, int64_t jobs) {
  unschedulable_jobs_.Add({{"pool", pools_.Admit(pool)}}).Set(static_cast<double>(jobs));
}

void ControllerMetrics::ObserveQueueWait(v1::StageKind stage, double seconds) {
  queue_wait_.Add({{"stage", StageLabel(stage)}}, QueueWaitBuckets()).Observe(seconds);
}

void ControllerMetrics::ObserveStageDuration(v1::StageKind stage, v1::State result,
                                             double seconds) {
  stage_duration_
      .Add({{"stage", StageLabel(stage)}, {"result", StateLabel(result)}}, StageDurationBuckets())
      .Observe(seconds);
}

void ControllerMetrics::SetAgents(std::string_view pool, bool healthy, int64_t count) {
  agents_.Add({{"pool", pools_.Admit(pool)}, {"health", healthy ? "healthy" : "unhealthy"}})
      .Set(static_cast<double>(count));
}

void ControllerMetrics::OnLeaseExpired(LeaseExpiryCause cause) {
  lease_expiries_.Add({{"cause", LeaseCauseLabel(cause)}}).Increment();
}

void ControllerMetrics::OnRetry(v1::StageKind stage, v1::FailureCause cause) {
  retries_.Add({{"stage", StageLabel(stage)}, {"cause", CauseLabel(cause)}}).Increment();
}

void ControllerMetrics::ObserveRpc(std::string_view method, int code, double seconds) {
  // "/bert.v1.JobService/SubmitJob" -> "SubmitJob".
  const size_t slash = method.rfind('/');
  if (slash != std::string_view::npos) method.remove_prefix(slash + 1);
  const std::string method_label = methods_.Admit(method);
  rpc_requests_.Add({{"method", method_label}, {"code", CodeLabel(code)}}).Increment();
  rpc_duration_.Add({{"method", method_label}}, RpcLatencyBuckets()).Observe(seconds);
}

void ControllerMetrics::ObserveStoreWrite(double seconds) { store_write_.Observe(seconds); }

void ControllerMetrics::SetStoreSizeBytes(int64_t bytes) {
  store_size_.Set(static_cast<double>(bytes));
}

void ControllerMetrics::AddArtifactBytes(ArtifactDirection direction, int64_t bytes) {
  if (bytes <= 0) return;
  artifact_bytes_.Add({{"direction", DirectionLabel(direction)}})
      .Increment(static_cast<double>(bytes));
}

}  // namespace bert::metrics
