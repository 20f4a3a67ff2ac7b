#include "metrics/metric_labels.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "protocol/stage_names.h"

namespace bert::metrics {

std::string StateLabel(v1::State state) { return absl::AsciiStrToLower(v1::State_Name(state)); }

std::string StageLabel(v1::StageKind stage) {
  std::string name = protocol::StageName(stage);
  return name.empty() ? "unspecified" : name;
}

std::string CauseLabel(v1::FailureCause cause) {
  return absl::AsciiStrToLower(v1::FailureCause_Name(cause));
}

std::string CodeLabel(int code) {
  if (code < 0 || code > 16) return "UNKNOWN";
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

std::string BoundedLabelSet::Admit(std::string_view value) {
  absl::MutexLock lock(&mu_);
  if (values_.find(value) != values_.end()) return std::string(value);
  if (values_.size() >= max_values_) return "other";
  values_.emplace(value);
  return std::string(value);
}

}  // namespace bert::metrics
