// Stage failures as absl::Status carrying the bert.v1.FailureCause that
// decides whether the controller retries the stage (server/retry_policy.h),
// and the one mapping from status codes to causes for errors that carry none.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "bert/v1/job.pb.h"

namespace bert::protocol {

// A status that carries `cause` as a payload, with a code that follows it:
// SPEC_ERROR, DATA_ERROR -> INVALID_ARGUMENT; ARTIFACT_CORRUPT -> DATA_LOSS;
// OUT_OF_MEMORY -> RESOURCE_EXHAUSTED; CANCELLED_BY_USER -> CANCELLED;
// WORKER_CRASHED, AGENT_LOST -> ABORTED; anything else -> INTERNAL.
absl::Status StageFailure(v1::FailureCause cause, absl::string_view message);

// The cause an error with no cause payload stands for:
//   OK                                   -> FAILURE_CAUSE_UNSPECIFIED
//   CANCELLED                            -> CANCELLED_BY_USER
//   INVALID_ARGUMENT, NOT_FOUND,
//   FAILED_PRECONDITION, OUT_OF_RANGE    -> DATA_ERROR (a bad or missing input; not retried)
//   DATA_LOSS                            -> ARTIFACT_CORRUPT
//   RESOURCE_EXHAUSTED                   -> OUT_OF_MEMORY
//   anything else                        -> INTERNAL (retried)
// Failures of the agent's own machinery (transfers, its work directory) are
// not data errors: they are made with StageFailure and an explicit cause.
v1::FailureCause CauseForCode(absl::StatusCode code);

// The cause `status` carries (StageFailure), else CauseForCode(status.code()).
v1::FailureCause CauseOf(const absl::Status& status);

// OK stays OK; otherwise StageFailure(CauseOf(status), "<what>: <message>").
absl::Status AsStageFailure(const absl::Status& status, absl::string_view what);

}  // namespace bert::protocol
