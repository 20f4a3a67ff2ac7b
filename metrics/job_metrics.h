// Per-job Prometheus gauges: the training metrics a worker reports and each
// stage's progress, labelled by job id (the only unbounded label value, so
// every series of a job is removed once it has been finished for a retention
// period). bertd exports them as bert_controller_job_*, an agent as
// bert_agent_job_*. Thread-safe.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bert/v1/job.pb.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace bert::metrics {

class JobMetrics {
 public:
  // Series one job may hold: the worker metrics, the step, and per stage a
  // progress, an ETA and a rate per unit. A new series past it is dropped, so
  // whatever a job reports, its series stay bounded.
  static constexpr size_t kMaxSeriesPerJob = 64;

  // Registers the families "<prefix>_train_loss", ... in `registry`, which
  // must outlive this object. `retention`: how long a finished job's series
  // stay visible.
  JobMetrics(prometheus::Registry& registry, const std::string& prefix, absl::Duration retention);
  JobMetrics(const JobMetrics&) = delete;
  JobMetrics& operator=(const JobMetrics&) = delete;

  // A worker metric by its protocol name (docs/worker-protocol.md):
  // "train/loss", "train/learning_rate", "train/grad_norm",
  // "train/tokens_per_second", "train/mfu", "train/epoch", "eval/loss",
  // "eval/accuracy", "eval/perplexity". A train/* metric with step >= 0 also
  // sets the job's step gauge. Returns false (and records nothing) for
  // other names, or for a job already forgotten.
  bool SetMetric(std::string_view job_id, std::string_view name, double value, int64_t step)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A stage's progress report: progress ratio (when total > 0), rate in
  // `unit`s per second, and ETA (when eta_seconds >= 0).
  void SetStageProgress(std::string_view job_id, v1::StageKind stage, const v1::Progress& progress)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Lifecycle. A job's series exist from its first report; once it has
  // finished and the retention period has passed they are removed, and
  // reports for it are ignored until OnJobActive is called for it again
  // (an agent that takes another stage of the same job).
  //
  // The job runs (again): cancels a pending expiry and accepts reports.
  void OnJobActive(std::string_view job_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts the retention clock of a finished (succeeded, failed, cancelled)
  // job, or of an agent's finished assignment.
  void OnJobFinished(std::string_view job_id, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the series of jobs finished at least `retention` before `now`.
  // Call periodically (e.g. once a minute).
  void ExpireFinishedJobs(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Removes a job's series now (as if its retention had passed).
  void ForgetJob(std::string_view job_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Jobs that currently have series.
  size_t JobCount() const ABSL_LOCKS_EXCLUDED(mu_);
  // Series a job currently has (0 for an unknown job).
  size_t SeriesCount(std::string_view job_id) const ABSL_LOCKS_EXCLUDED(mu_);
  // Jobs that have series and no finish time (no OnJobFinished since they
  // were last active): what a feed re-checks for jobs that ended unseen.
  std::vector<std::string> UnfinishedJobIds() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using GaugeFamily = prometheus::Family<prometheus::Gauge>;
  struct Series {
    std::set<std::pair<GaugeFamily*, prometheus::Gauge*>> gauges;
  };

  GaugeFamily& AddFamily(const std::string& name, const std::string& help);
  void Set(GaugeFamily& family, const std::string& job_id, prometheus::Labels labels, double value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  prometheus::Registry& registry_;
  const std::string prefix_;
  const absl::Duration retention_;
  std::map<std::string, GaugeFamily*, std::less<>> by_worker_name_;
  GaugeFamily* step_ = nullptr;
  GaugeFamily* stage_progress_ = nullptr;
  GaugeFamily* stage_rate_ = nullptr;
  GaugeFamily* stage_eta_ = nullptr;

  mutable absl::Mutex mu_;
  std::map<std::string, Series, std::less<>> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time, std::less<>> finished_at_ ABSL_GUARDED_BY(mu_);
  std::set<std::string, std::less<>> forgotten_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> forgotten_order_ ABSL_GUARDED_BY(mu_);  // caps forgotten_
};

}  // namespace bert::metrics
