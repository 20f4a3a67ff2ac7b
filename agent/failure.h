// The agent's names for the failure-cause rule, which lives in
// protocol/failure_cause.h (StageFailure, CauseOf). Kept so
// that agent code can say StageFailure(...) unqualified; new code may include
// protocol/failure_cause.h directly.
#pragma once

#include "protocol/failure_cause.h"

namespace bert::agent {

using protocol::CauseOf;
using protocol::StageFailure;

}  // namespace bert::agent
