// bertd's Prometheus metrics (bert_controller_*): named hooks the controller
// calls where things happen. Serve them with MetricsExposer.
//
// Label values are bounded: states, stages and causes are bert.v1 enum names,
// pools and RPC methods are capped (BoundedLabelSet), and the per-job series
// (jobs(), bert_controller_job_*) are removed after a retention period.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "bert/v1/job.pb.h"
#include "metrics/job_metrics.h"
#include "metrics/metric_labels.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace bert::metrics {

// What a lease expiry took away.
enum class LeaseExpiryCause {
  kAgentHeartbeat,  // an agent stopped heart-beating: all its assignments are lost
  kAssignment,      // one assignment's lease ran out (its agent is still alive)
};

// Which way artifact bytes moved through the controller.
enum class ArtifactDirection { kUpload, kDownload };

class ControllerMetrics {
 public:
  // `job_retention`: how long finished jobs' per-job series stay.
  explicit ControllerMetrics(absl::Duration job_retention = absl::Minutes(30));
  ControllerMetrics(const ControllerMetrics&) = delete;
  ControllerMetrics& operator=(const ControllerMetrics&) = delete;

  // What MetricsExposer serves.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // Jobs and stages by state (gauges). Set* after loading the store at
  // startup; On*Changed on each transition (from STATE_UNSPECIFIED = created).
  void SetJobsByState(v1::State state, int64_t count);
  void OnJobStateChanged(v1::State from, v1::State to);
  void SetStagesByState(v1::StageKind stage, v1::State state, int64_t count);
  void OnStageStateChanged(v1::StageKind stage, v1::State from, v1::State to);

  // Stage pieces waiting for an agent of `pool`.
  void SetQueueLength(std::string_view pool, int64_t length);
  // Unfinished jobs of `pool` whose queued stage no live agent could ever run
  // (the scheduler's waiting reason is set).
  void SetUnschedulableJobs(std::string_view pool, int64_t jobs);
  // Time from a stage becoming runnable to an agent taking it.
  void ObserveQueueWait(v1::StageKind stage, double seconds);
  // Wall time of a finished stage attempt; `result`: SUCCEEDED, FAILED or CANCELLED.
  void ObserveStageDuration(v1::StageKind stage, v1::State result, double seconds);

  // Registered agents of `pool` that are (un)healthy.
  void SetAgents(std::string_view pool, bool healthy, int64_t count);
  void OnLeaseExpired(LeaseExpiryCause cause);
  // A failed stage attempt is retried because of `cause`.
  void OnRetry(v1::StageKind stage, v1::FailureCause cause);

  // A finished gRPC call: `method` as "/bert.v1.JobService/SubmitJob" or
  // "SubmitJob", `code` a grpc::StatusCode (same numbers as absl::StatusCode).
  void ObserveRpc(std::string_view method, int code, double seconds);

  // RocksDB: one (synced) write batch, and the live size on disk.
  void ObserveStoreWrite(double seconds);
  void SetStoreSizeBytes(int64_t bytes);
  void AddArtifactBytes(ArtifactDirection direction, int64_t bytes);

  // Per-job training gauges and stage progress (bert_controller_job_*),
  // fed from ReportStage. See JobMetrics for the names and the lifecycle.
  JobMetrics& jobs() { return jobs_; }
  bool SetJobMetric(std::string_view job_id, std::string_view name, double value,
                    int64_t step = -1) {
    return jobs_.SetMetric(job_id, name, value, step);
  }
  // A stage's Progress report (ReportStage): progress ratio, rate and ETA.
  void SetStageProgress(std::string_view job_id, v1::StageKind stage,
                        const v1::Progress& progress) {
    jobs_.SetStageProgress(job_id, stage, progress);
  }
  // Call when a job reaches SUCCEEDED, FAILED or CANCELLED; its per-job
  // series go `job_retention` later, at an ExpireFinishedJobs call (bertd's
  // ControllerMetricsFeed makes both calls once a second).
  void OnJobFinished(std::string_view job_id, absl::Time now) { jobs_.OnJobFinished(job_id, now); }
  void ExpireFinishedJobs(absl::Time now) { jobs_.ExpireFinishedJobs(now); }

 private:
  prometheus::Gauge& JobsGauge(v1::State state);
  prometheus::Gauge& StagesGauge(v1::StageKind stage, v1::State state);

  std::shared_ptr<prometheus::Registry> registry_;
  BoundedLabelSet pools_{64};
  BoundedLabelSet methods_{64};

  prometheus::Family<prometheus::Gauge>& jobs_by_state_;
  prometheus::Family<prometheus::Counter>& job_transitions_;
  prometheus::Family<prometheus::Gauge>& stages_by_state_;
  prometheus::Family<prometheus::Gauge>& queue_length_;
  prometheus::Family<prometheus::Gauge>& unschedulable_jobs_;
  prometheus::Family<prometheus::Histogram>& queue_wait_;
  prometheus::Family<prometheus::Histogram>& stage_duration_;
  prometheus::Family<prometheus::Gauge>& agents_;
  prometheus::Family<prometheus::Counter>& lease_expiries_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Histogram& store_write_;
  prometheus::Gauge& store_size_;
  prometheus::Family<prometheus::Counter>& artifact_bytes_;
  JobMetrics jobs_;
};

}  // namespace bert::metrics
