#include "agent/metered_reporter.h"

#include <algorithm>

namespace bert::agent {

void MeteredReporter::Progress(int64_t done, int64_t total, std::string_view unit) {
  next_.Progress(done, total, unit);
  const auto now = std::chrono::steady_clock::now();
  v1::Progress progress;
  progress.set_done(done);
  progress.set_total(total);
  progress.set_unit(std::string(unit));
  progress.set_eta_seconds(-1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!base_ || done < base_->second) base_.emplace(now, done);  // first, or restarted
    const double seconds = std::chrono::duration<double>(now - base_->first).count();
    if (seconds > 0) {
      const double rate = static_cast<double>(done - base_->second) / seconds;
      progress.set_rate_per_second(rate);
      if (rate > 0 && total > 0) {
        progress.set_eta_seconds(static_cast<double>(std::max<int64_t>(0, total - done)) / rate);
      }
    }
  }
  metrics_.jobs().SetStageProgress(job_id_, stage_, progress);
}

void MeteredReporter::Metric(std::string_view name, double value, int64_t step) {
  next_.Metric(name, value, step);
  metrics_.jobs().SetMetric(job_id_, name, value, step);
}

}  // namespace bert::agent
