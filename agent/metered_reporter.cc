#include "agent/metered_reporter.h"

namespace bert::agent {

void MeteredReporter::Progress(int64_t done, int64_t total, std::string_view unit) {
  next_.Progress(done, total, unit);
  v1::Progress progress;
  {
    absl::MutexLock lock(&mu_);
    progress = rate_.Measure(done, total, unit);
  }
  metrics_.jobs().SetStageProgress(job_id_, stage_, progress);
}

void MeteredReporter::Metric(std::string_view name, double value, int64_t step) {
  next_.Metric(name, value, step);
  metrics_.jobs().SetMetric(job_id_, name, value, step);
}

}  // namespace bert::agent
