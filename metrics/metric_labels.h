// Label values for bert metrics: the lower-case names of bert.v1 enums, and a
// guard that keeps free-form label values (pools, RPC methods) bounded.
#pragma once

#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

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
  std::string Admit(std::string_view value);

 private:
  std::mutex mu_;
  std::set<std::string, std::less<>> values_;
  const size_t max_values_;
};

}  // namespace bert::metrics
