// Label values for bert metrics: the lower-case names of bert.v1 enums, and a
// guard that keeps free-form label values (pools, RPC methods) bounded.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "bert/v1/job.pb.h"

namespace bert::metrics {

// "queued", "running", ...; "prepare", "tokenizer", ...; "agent_lost", ...
std::string StateLabel(v1::State state);
std::string StageLabel(v1::StageKind stage);
std::string CauseLabel(v1::FailureCause cause);
// A gRPC / absl status code as its canonical name: "OK", "UNAVAILABLE", ...
std::string CodeLabel(int code);

// Admits at most `max_values` distinct label values; later new values become
// "other", so a misbehaving caller cannot create unbounded series.
// Thread-safe.
class BoundedLabelSet {
 public:
  explicit BoundedLabelSet(size_t max_values) : max_values_(max_values) {}
  std::string Admit(std::string_view value) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::set<std::string, std::less<>> values_ ABSL_GUARDED_BY(mu_);
  const size_t max_values_;
};

}  // namespace bert::metrics
