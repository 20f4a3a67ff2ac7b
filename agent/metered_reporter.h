// A StageReporter that passes everything on to another reporter and also sets
// the agent's per-job Prometheus gauges (bert_agent_job_*): the worker's
// metrics and the stage's progress, rate and ETA.
#pragma once

#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/progress_rate.h"
#include "agent/stage_reporter.h"
#include "bert/v1/job.pb.h"
#include "metrics/agent_metrics.h"

namespace bert::agent {

// Thread-safe, as every ProgressSink. `next` and `metrics` must outlive it.
class MeteredReporter final : public ForwardingReporter {
 public:
  MeteredReporter(StageReporter& next, metrics::AgentMetrics& metrics, std::string job_id,
                  v1::StageKind stage)
      : ForwardingReporter(next), metrics_(metrics), job_id_(std::move(job_id)), stage_(stage) {}

  void Progress(int64_t done, int64_t total, std::string_view unit) override;
  void Metric(std::string_view name, double value, int64_t step) override;

 private:
  metrics::AgentMetrics& metrics_;
  const std::string job_id_;
  const v1::StageKind stage_;

  absl::Mutex mu_;
  ProgressRate rate_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bert::agent
