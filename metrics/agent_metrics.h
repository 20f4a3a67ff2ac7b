// bert-agent's Prometheus metrics (bert_agent_*): named hooks the agent calls.
// Serve them with MetricsExposer. Label values are bounded as in
// ControllerMetrics. Thread-safe.
//
// Never link this (prometheus-cpp's civetweb server) into a process that
// loads libtorch: the agent runs libtorch only in its bert-worker children.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bert/v1/job.pb.h"
#include "metrics/controller_metrics.h"  // ArtifactDirection
#include "metrics/job_metrics.h"
#include "metrics/metric_labels.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace bert::metrics {

class AgentMetrics {
 public:
  explicit AgentMetrics(absl::Duration job_retention = absl::Minutes(30));
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // bert_agent_info{agent_id, version} 1, and the agent's pools
  // (bert_agent_pool_member{pool} 1). Call once after registering.
  void SetInfo(std::string_view agent_id, std::string_view version,
               const std::vector<std::string>& pools) ABSL_LOCKS_EXCLUDED(mu_);
  // 1 while the agent holds a registration with the controller, else 0.
  void SetConnected(bool connected);
  void OnHeartbeat(bool ok);

  // An assignment starts and finishes (result SUCCEEDED, FAILED or CANCELLED).
  // Also drives jobs()' lifecycle: a job's retention clock starts when its
  // last running assignment here finishes.
  void OnAssignmentStarted(std::string_view job_id, v1::StageKind stage) ABSL_LOCKS_EXCLUDED(mu_);
  void OnAssignmentFinished(std::string_view job_id, v1::StageKind stage, v1::State result,
                            double seconds, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // A worker or stage process ended; `cause` FAILURE_CAUSE_UNSPECIFIED = clean exit.
  void OnWorkerExit(v1::StageKind stage, v1::FailureCause cause);

  // A finished gRPC call to the controller (see ControllerMetrics::ObserveRpc).
  void ObserveRpc(std::string_view method, int code, double seconds);
  void AddArtifactBytes(ArtifactDirection direction, int64_t bytes);

  // Per-job gauges (bert_agent_job_*) from the worker's reports.
  JobMetrics& jobs() { return jobs_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  BoundedLabelSet methods_{64};
  BoundedLabelSet pools_{64};

  prometheus::Family<prometheus::Gauge>& info_;
  absl::Mutex mu_;
  prometheus::Gauge* info_gauge_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::map<std::string, int, std::less<>> running_by_job_ ABSL_GUARDED_BY(mu_);
  prometheus::Family<prometheus::Gauge>& pool_member_;
  prometheus::Gauge& connected_;
  prometheus::Family<prometheus::Counter>& heartbeats_;
  prometheus::Family<prometheus::Gauge>& running_;
  prometheus::Family<prometheus::Counter>& assignments_;
  prometheus::Family<prometheus::Histogram>& stage_duration_;
  prometheus::Family<prometheus::Counter>& worker_exits_;
  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Counter>& artifact_bytes_;
  JobMetrics jobs_;
};

}  // namespace bert::metrics
