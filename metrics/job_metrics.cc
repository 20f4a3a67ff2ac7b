#include "metrics/job_metrics.h"

#include "metrics/metric_labels.h"

namespace bert::metrics {
namespace {

// How many forgotten job ids are remembered, to drop their late reports.
constexpr size_t kMaxForgottenJobs = 4096;

struct WorkerMetric {
  const char* worker_name;  // docs/worker-protocol.md
  const char* suffix;       // appended to "<prefix>_"
  const char* help;
};

constexpr WorkerMetric kWorkerMetrics[] = {
    {"train/loss", "train_loss", "Latest training MLM loss of the job."},
    {"train/learning_rate", "learning_rate", "Current learning rate of the job."},
    {"train/grad_norm", "grad_norm", "Latest gradient norm (before clipping) of the job."},
    {"train/tokens_per_second", "tokens_per_second", "Training throughput of the job."},
    {"train/mfu", "mfu_ratio", "Model FLOPs utilisation of the job (0..1)."},
    {"train/epoch", "train_epoch", "Epochs of the training set done by the job."},
    {"eval/loss", "eval_loss", "Latest evaluation MLM loss of the job."},
    {"eval/accuracy", "eval_accuracy_ratio", "Latest masked-token accuracy (0..1) of the job."},
    {"eval/perplexity", "eval_perplexity", "Latest evaluation perplexity of the job."},
};

// A unit label: short, lower-case letters and '_' ("bytes", "lines", "tokens").
bool IsUnit(const std::string& unit) {
  if (unit.size() > 16) return false;
  for (const char c : unit) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

}  // namespace

JobMetrics::JobMetrics(prometheus::Registry& registry, const std::string& prefix,
                       absl::Duration retention)
    : registry_(registry), prefix_(prefix), retention_(retention) {
  for (const WorkerMetric& metric : kWorkerMetrics) {
    by_worker_name_[metric.worker_name] = &AddFamily(prefix_ + "_" + metric.suffix, metric.help);
  }
  step_ = &AddFamily(prefix_ + "_train_step", "Latest optimizer step the job reported.");
  stage_progress_ = &AddFamily(prefix_ + "_stage_progress_ratio",
                               "Fraction (0..1) of a stage of the job that is done.");
  stage_rate_ = &AddFamily(prefix_ + "_stage_rate_per_second",
                           "Throughput of a stage of the job, in `unit`s per second.");
  stage_eta_ = &AddFamily(prefix_ + "_stage_eta_seconds",
                          "Estimated seconds until a stage of the job finishes.");
}

JobMetrics::GaugeFamily& JobMetrics::AddFamily(const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry_);
}

bool JobMetrics::SetMetric(std::string_view job_id, std::string_view name, double value,
                           int64_t step) {
  auto it = by_worker_name_.find(name);
  if (it == by_worker_name_.end()) return false;
  absl::MutexLock lock(&mu_);
  const std::string id(job_id);
  if (forgotten_.count(id) != 0) return false;
  Set(*it->second, id, {}, value);
  if (step >= 0 && name.substr(0, 6) == "train/") Set(*step_, id, {}, static_cast<double>(step));
  return true;
}

void JobMetrics::SetStageProgress(std::string_view job_id, v1::StageKind stage,
                                  const v1::Progress& progress) {
  absl::MutexLock lock(&mu_);
  const std::string id(job_id);
  if (forgotten_.count(id) != 0) return;
  const std::string stage_label = StageLabel(stage);
  if (progress.total() > 0) {
    Set(*stage_progress_, id, {{"stage", stage_label}},
        static_cast<double>(progress.done()) / static_cast<double>(progress.total()));
  }
  if (!progress.unit().empty()) {
    // Units come from our own stages ("bytes", "lines", "tokens", "steps"...);
    // anything longer is not a unit and is folded to keep labels bounded.
    const std::string unit = IsUnit(progress.unit()) ? progress.unit() : "other";
    Set(*stage_rate_, id, {{"stage", stage_label}, {"unit", unit}}, progress.rate_per_second());
  }
  if (progress.eta_seconds() >= 0) {
    Set(*stage_eta_, id, {{"stage", stage_label}}, progress.eta_seconds());
  }
}

void JobMetrics::Set(GaugeFamily& family, const std::string& job_id, prometheus::Labels labels,
                     double value) {
  labels["job_id"] = job_id;
  Series& series = jobs_[job_id];
  if (series.gauges.size() >= kMaxSeriesPerJob && !family.Has(labels)) return;  // see the cap
  prometheus::Gauge& gauge = family.Add(labels);
  gauge.Set(value);
  series.gauges.emplace(&family, &gauge);
}

void JobMetrics::OnJobActive(std::string_view job_id) {
  absl::MutexLock lock(&mu_);
  const std::string id(job_id);
  finished_at_.erase(id);
  if (forgotten_.erase(id) != 0) {
    for (auto it = forgotten_order_.begin(); it != forgotten_order_.end(); ++it) {
      if (*it == id) {
        forgotten_order_.erase(it);
        break;
      }
    }
  }
}

void JobMetrics::OnJobFinished(std::string_view job_id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  finished_at_.emplace(std::string(job_id), now);  // keeps the first finish time
}

void JobMetrics::ExpireFinishedJobs(absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> expired;
  for (const auto& [job_id, finished] : finished_at_) {
    if (now - finished >= retention_) expired.push_back(job_id);
  }
  for (const std::string& job_id : expired) ForgetLocked(job_id);
}

void JobMetrics::ForgetJob(std::string_view job_id) {
  absl::MutexLock lock(&mu_);
  ForgetLocked(std::string(job_id));
}

void JobMetrics::ForgetLocked(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end()) {
    for (auto [family, gauge] : it->second.gauges) family->Remove(gauge);
    jobs_.erase(it);
  }
  finished_at_.erase(job_id);
  if (forgotten_.insert(job_id).second) {
    forgotten_order_.push_back(job_id);
    if (forgotten_order_.size() > kMaxForgottenJobs) {
      forgotten_.erase(forgotten_order_.front());
      forgotten_order_.pop_front();
    }
  }
}

size_t JobMetrics::JobCount() const {
  absl::MutexLock lock(&mu_);
  return jobs_.size();
}

size_t JobMetrics::SeriesCount(std::string_view job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? 0 : it->second.gauges.size();
}

std::vector<std::string> JobMetrics::UnfinishedJobIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [job_id, series] : jobs_) {
    if (!finished_at_.contains(job_id)) ids.push_back(job_id);
  }
  return ids;
}

}  // namespace bert::metrics
