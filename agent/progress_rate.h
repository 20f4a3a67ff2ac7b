// Turns a stage's (done, total, unit) reports into a v1::Progress with its
// rate and ETA, measured from the first report (or from a restart of `done`).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "bert/v1/job.pb.h"

namespace bert::agent {

// Not thread-safe: callers hold their own lock.
class ProgressRate {
 public:
  // Rate and ETA are set once more than half a second has passed since the
  // base and `done` has moved; eta_seconds is -1 until then.
  v1::Progress Measure(int64_t done, int64_t total, std::string_view unit,
                       std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  std::optional<std::pair<std::chrono::steady_clock::time_point, int64_t>> base_;
};

}  // namespace bert::agent
