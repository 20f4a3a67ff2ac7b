#include "agent/progress_rate.h"

#include <algorithm>
#include <string>

namespace bert::agent {

v1::Progress ProgressRate::Measure(int64_t done, int64_t total, std::string_view unit,
                                   std::chrono::steady_clock::time_point now) {
  v1::Progress p;
  p.set_done(done);
  p.set_total(total);
  p.set_unit(std::string(unit));
  p.set_eta_seconds(-1);
  if (!base_ || base_->second > done) base_.emplace(now, done);  // first, or restarted
  const double seconds = std::chrono::duration<double>(now - base_->first).count();
  if (seconds > 0.5 && done > base_->second) {
    const double rate = static_cast<double>(done - base_->second) / seconds;
    p.set_rate_per_second(rate);
    if (total > 0) p.set_eta_seconds(static_cast<double>(std::max<int64_t>(0, total - done)) / rate);
  }
  return p;
}

}  // namespace bert::agent
