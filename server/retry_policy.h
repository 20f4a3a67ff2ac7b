// Whether and when a failed stage piece is retried, by the failure's cause.
#pragma once

#include "absl/time/time.h"
#include "bert/v1/job.pb.h"

namespace bert::server {

struct RetryPolicy {
  absl::Duration backoff_base = absl::Seconds(2);
  absl::Duration backoff_max = absl::Seconds(60);

  // Attempts allowed in all for a failure of `cause`, given the spec's
  // resources.max_attempts: 0 for causes that are never retried (spec and data
  // errors, cancellation), twice the budget for a lost host (not the job's
  // fault), the budget itself otherwise.
  static int AttemptLimit(v1::FailureCause cause, int max_attempts);
  // Delay before attempt `next_attempt` (2, 3, ...): base * 2^(next_attempt-2), capped.
  absl::Duration Backoff(int next_attempt) const;
};

}  // namespace bert::server
