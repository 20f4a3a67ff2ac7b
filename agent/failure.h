// Stage failures as absl::Status, carrying the bert.v1.FailureCause that
// decides whether the controller retries the stage.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "bert/v1/job.pb.h"

namespace bert::agent {

// A status whose code follows `cause` and that carries `cause` as a payload.
absl::Status StageFailure(v1::FailureCause cause, absl::string_view message);

// The cause a status carries, or one derived from its code: CANCELLED ->
// CANCELLED_BY_USER, INVALID_ARGUMENT -> DATA_ERROR, DATA_LOSS ->
// ARTIFACT_CORRUPT, RESOURCE_EXHAUSTED -> OUT_OF_MEMORY, anything else -> INTERNAL.
v1::FailureCause CauseOf(const absl::Status& status);

}  // namespace bert::agent
