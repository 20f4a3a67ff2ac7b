#include "protocol/failure_cause.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace bert::protocol {
namespace {

constexpr char kCauseUrl[] = "type.bert/bert.v1.FailureCause";

absl::StatusCode CodeFor(v1::FailureCause cause) {
  switch (cause) {
    case v1::SPEC_ERROR:
    case v1::DATA_ERROR:
      return absl::StatusCode::kInvalidArgument;
    case v1::ARTIFACT_CORRUPT:
      return absl::StatusCode::kDataLoss;
    case v1::OUT_OF_MEMORY:
      return absl::StatusCode::kResourceExhausted;
    case v1::CANCELLED_BY_USER:
    case v1::PAUSED_BY_USER:  // stopped on request; the payload tells pause from cancel
      return absl::StatusCode::kCancelled;
    case v1::WORKER_CRASHED:
    case v1::AGENT_LOST:
      return absl::StatusCode::kAborted;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status StageFailure(v1::FailureCause cause, absl::string_view message) {
  absl::Status status(CodeFor(cause), message);
  status.SetPayload(kCauseUrl, absl::Cord(v1::FailureCause_Name(cause)));
  return status;
}

v1::FailureCause CauseForCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return v1::FAILURE_CAUSE_UNSPECIFIED;
    case absl::StatusCode::kCancelled:
      return v1::CANCELLED_BY_USER;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return v1::DATA_ERROR;
    case absl::StatusCode::kDataLoss:
      return v1::ARTIFACT_CORRUPT;
    case absl::StatusCode::kResourceExhausted:
      return v1::OUT_OF_MEMORY;
    default:
      return v1::INTERNAL;
  }
}

v1::FailureCause CauseOf(const absl::Status& status) {
  if (status.ok()) return v1::FAILURE_CAUSE_UNSPECIFIED;
  if (auto payload = status.GetPayload(kCauseUrl)) {
    v1::FailureCause cause;
    if (v1::FailureCause_Parse(std::string(*payload), &cause)) return cause;
  }
  return CauseForCode(status.code());
}

absl::Status AsStageFailure(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return status;
  return StageFailure(CauseOf(status), absl::StrCat(what, ": ", status.message()));
}

}  // namespace bert::protocol
