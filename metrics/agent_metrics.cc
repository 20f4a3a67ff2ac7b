#include "metrics/agent_metrics.h"

#include "metrics/histogram_buckets.h"

namespace bert::metrics {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

constexpr v1::StageKind kStages[] = {v1::PREPARE, v1::TOKENIZER, v1::PREPROCESS, v1::PRETRAIN,
                                     v1::EXPORT};

std::string DirectionLabel(ArtifactDirection direction) {
  return direction == ArtifactDirection::kUpload ? "upload" : "download";
}

std::string ExitLabel(v1::FailureCause cause) {
  return cause == v1::FAILURE_CAUSE_UNSPECIFIED ? "ok" : CauseLabel(cause);
}

}  // namespace

AgentMetrics::AgentMetrics(absl::Duration job_retention)
    : registry_(std::make_shared<prometheus::Registry>()),
      info_(BuildGauge()
                .Name("bert_agent_info")
                .Help("Always 1; labels identify the agent and its version.")
                .Register(*registry_)),
      pool_member_(BuildGauge()
                       .Name("bert_agent_pool_member")
                       .Help("1 for each host pool the agent serves.")
                       .Register(*registry_)),
      connected_(BuildGauge()
                     .Name("bert_agent_controller_connected")
                     .Help("1 while the agent is registered with the controller.")
                     .Register(*registry_)
                     .Add({})),
      heartbeats_(BuildCounter()
                      .Name("bert_agent_heartbeats_total")
                      .Help("Heartbeats sent to the controller, by result.")
                      .Register(*registry_)),
      running_(BuildGauge()
                   .Name("bert_agent_assignments_running")
                   .Help("Assignments running on this agent, by stage.")
                   .Register(*registry_)),
      assignments_(BuildCounter()
                       .Name("bert_agent_assignments_total")
                       .Help("Finished assignments, by stage and result.")
                       .Register(*registry_)),
      stage_duration_(BuildHistogram()
                          .Name("bert_agent_stage_duration_seconds")
                          .Help("Wall time of assignments run by this agent, by stage.")
                          .Register(*registry_)),
      worker_exits_(BuildCounter()
                        .Name("bert_agent_worker_exits_total")
                        .Help("Stage processes that ended, by stage and failure cause.")
                        .Register(*registry_)),
      rpc_requests_(BuildCounter()
                        .Name("bert_agent_grpc_client_requests_total")
                        .Help("gRPC calls to the controller, by method and status code.")
                        .Register(*registry_)),
      rpc_duration_(BuildHistogram()
                        .Name("bert_agent_grpc_client_request_duration_seconds")
                        .Help("Latency of gRPC calls to the controller, by method.")
                        .Register(*registry_)),
      artifact_bytes_(BuildCounter()
                          .Name("bert_agent_artifact_bytes_total")
                          .Help("Artifact bytes moved by this agent, by direction.")
                          .Register(*registry_)),
      jobs_(*registry_, "bert_agent_job", job_retention) {
  for (const char* result : {"ok", "error"}) heartbeats_.Add({{"result", result}});
  for (v1::StageKind stage : kStages) {
    running_.Add({{"stage", StageLabel(stage)}});
    stage_duration_.Add({{"stage", StageLabel(stage)}}, StageDurationBuckets());
    for (v1::State result : {v1::SUCCEEDED, v1::FAILED, v1::CANCELLED}) {
      assignments_.Add({{"stage", StageLabel(stage)}, {"result", StateLabel(result)}});
    }
  }
  for (ArtifactDirection direction : {ArtifactDirection::kUpload, ArtifactDirection::kDownload}) {
    artifact_bytes_.Add({{"direction", DirectionLabel(direction)}});
  }
}

void AgentMetrics::SetInfo(std::string_view agent_id, std::string_view version,
                           const std::vector<std::string>& pools) {
  absl::MutexLock lock(&mu_);
  // One series: a new identity replaces the old one.
  if (info_gauge_ != nullptr) info_.Remove(info_gauge_);
  info_gauge_ =
      &info_.Add({{"agent_id", std::string(agent_id)}, {"version", std::string(version)}});
  info_gauge_->Set(1);
  for (const std::string& pool : pools) pool_member_.Add({{"pool", pools_.Admit(pool)}}).Set(1);
}

void AgentMetrics::SetConnected(bool connected) { connected_.Set(connected ? 1 : 0); }

void AgentMetrics::OnHeartbeat(bool ok) {
  heartbeats_.Add({{"result", ok ? "ok" : "error"}}).Increment();
}

void AgentMetrics::OnAssignmentStarted(std::string_view job_id, v1::StageKind stage) {
  running_.Add({{"stage", StageLabel(stage)}}).Increment();
  {
    absl::MutexLock lock(&mu_);
    ++running_by_job_[std::string(job_id)];
  }
  jobs_.OnJobActive(job_id);
}

void AgentMetrics::OnAssignmentFinished(std::string_view job_id, v1::StageKind stage,
                                        v1::State result, double seconds, absl::Time now) {
  running_.Add({{"stage", StageLabel(stage)}}).Decrement();
  assignments_.Add({{"stage", StageLabel(stage)}, {"result", StateLabel(result)}}).Increment();
  stage_duration_.Add({{"stage", StageLabel(stage)}}, StageDurationBuckets()).Observe(seconds);
  {
    absl::MutexLock lock(&mu_);
    auto it = running_by_job_.find(job_id);
    if (it != running_by_job_.end() && --it->second > 0) return;  // another piece still runs
    if (it != running_by_job_.end()) running_by_job_.erase(it);
  }
  jobs_.OnJobFinished(job_id, now);
}

void AgentMetrics::OnWorkerExit(v1::StageKind stage, v1::FailureCause cause) {
  worker_exits_.Add({{"stage", StageLabel(stage)}, {"cause", ExitLabel(cause)}}).Increment();
}

void AgentMetrics::ObserveRpc(std::string_view method, int code, double seconds) {
  const size_t slash = method.rfind('/');
  if (slash != std::string_view::npos) method.remove_prefix(slash + 1);
  const std::string method_label = methods_.Admit(method);
  rpc_requests_.Add({{"method", method_label}, {"code", CodeLabel(code)}}).Increment();
  rpc_duration_.Add({{"method", method_label}}, RpcLatencyBuckets()).Observe(seconds);
}

void AgentMetrics::AddArtifactBytes(ArtifactDirection direction, int64_t bytes) {
  if (bytes <= 0) return;
  artifact_bytes_.Add({{"direction", DirectionLabel(direction)}})
      .Increment(static_cast<double>(bytes));
}

}  // namespace bert::metrics
