#include "server/retry_policy.h"

#include <algorithm>

namespace bert::server {

int RetryPolicy::AttemptLimit(v1::FailureCause cause, int max_attempts) {
  max_attempts = std::max(1, max_attempts);
  switch (cause) {
    case v1::SPEC_ERROR:
    case v1::DATA_ERROR:
    case v1::CANCELLED_BY_USER:
    case v1::DEPENDENCY_FAILED:
    case v1::RETRIES_EXHAUSTED:
      return 0;
    case v1::AGENT_LOST:
      return 2 * max_attempts;
    default:
      return max_attempts;
  }
}

absl::Duration RetryPolicy::Backoff(int next_attempt) const {
  absl::Duration d = backoff_base;
  for (int i = 2; i < next_attempt && d < backoff_max; ++i) d *= 2;
  return std::min(d, backoff_max);
}

}  // namespace bert::server
