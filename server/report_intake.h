// Where a report is checked: what an agent sends about a piece it runs
// (progress, metrics, logs, checkpoints, and the piece's completion) is
// checked against the live attempt it names, then turned into events and
// records on the job's change. No I/O: the JobManager commits the change.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "server/job_state_machine.h"

namespace bert::server {

// OK when `ref` names the live attempt of a running piece of `job` (null: no
// such job, NOT_FOUND); FAILED_PRECONDITION naming the piece's state and
// attempt otherwise (a stale attempt's report is refused).
absl::Status CheckLive(const v1::Job* job, const v1::AssignmentRef& ref);

class ReportIntake {
 public:
  static constexpr int kMaxReportsPerCall = 10000;
  static constexpr size_t kMaxLogBytes = 64 << 10;
  // Metric names are chosen by the worker; each distinct one is a store key
  // prefix and a map entry of the job, so they are bounded: at most
  // kMaxMetricNameBytes of [A-Za-z0-9_./-] (else the report is refused), and
  // at most kMaxMetricNamesPerJob distinct names per job (a point with a new
  // name past it is dropped, and one warning log event per report says so).
  static constexpr size_t kMaxMetricNameBytes = 128;
  static constexpr int kMaxMetricNamesPerJob = 256;
  // What one job's reports may add to the store in all, counted in the job
  // (Job.metric_points, log_bytes, checkpoint_records: what was reported,
  // dropped included). Past a bound, reports of that kind are dropped and one
  // warning log event says so when it is first crossed. A million points is
  // logging_steps 1 with six series for 166,000 steps; the article's run logs
  // 12,000.
  static constexpr int64_t kMaxMetricPointsPerJob = 1'000'000;
  static constexpr int64_t kMaxLogBytesPerJob = 64 << 20;
  static constexpr int64_t kMaxCheckpointsPerJob = 10'000;
  // Metric values carried by one checkpoint record (else the report is refused).
  static constexpr int kMaxCheckpointMetrics = 64;

  // Checks the shape of `request` before any lock is taken.
  static absl::Status CheckShape(const v1::ReportStageRequest& request);
  // Applies the reports of a live piece to `change`: events are appended
  // (the job record is not rewritten for them), the stage's progress and the
  // job's latest metric values updated in memory, checkpoint records and
  // their artifacts added. INVALID_ARGUMENT for a malformed report; nothing
  // is applied then.
  static absl::Status Apply(const v1::ReportStageRequest& request, JobStateMachine* change);

  // The outputs of a successful completion, named and identified by the
  // artifact id rule, or INVALID_ARGUMENT naming the bad output.
  static absl::StatusOr<std::vector<v1::Artifact>> Outputs(const v1::CompleteStageRequest& request,
                                                           const v1::Stage& stage, absl::Time now);
};

}  // namespace bert::server
