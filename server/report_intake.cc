#include "server/report_intake.h"

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "protocol/artifact_ids.h"
#include "server/job_model.h"
#include "server/time_util.h"

namespace bert::server {
namespace {

absl::Status CheckMetricName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("reports.metric.name: required");
  if (name.size() > ReportIntake::kMaxMetricNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("reports.metric.name: ", name.size(), " bytes is over the limit of ",
                     ReportIntake::kMaxMetricNameBytes));
  }
  for (const char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '/' &&
        c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "reports.metric.name: '", absl::CHexEscape(name), "' may hold only [A-Za-z0-9_./-]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckLive(const v1::Job* job, const v1::AssignmentRef& ref) {
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("job '", ref.job_id(), "' not found"));
  const v1::ShardAttempt* shard = FindPiece(*job, ref.stage(), ref.shard_index());
  if (shard == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("no such stage piece: ", RefString(ref)));
  }
  if (shard->state() != v1::RUNNING || shard->attempt() != ref.attempt()) {
    return absl::FailedPreconditionError(
        absl::StrCat("stale assignment ", RefString(ref), ": the piece is ",
                     v1::State_Name(shard->state()), " at attempt ", shard->attempt()));
  }
  return absl::OkStatus();
}

absl::Status ReportIntake::CheckShape(const v1::ReportStageRequest& request) {
  if (request.reports_size() > kMaxReportsPerCall) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reports: ", request.reports_size(), " is over the limit of ", kMaxReportsPerCall));
  }
  for (const v1::StageReport& report : request.reports()) {
    if (report.body_case() == v1::StageReport::BODY_NOT_SET) {
      return absl::InvalidArgumentError("reports: a report with no body");
    }
    if (report.has_metric()) {
      if (absl::Status name = CheckMetricName(report.metric().name()); !name.ok()) return name;
    }
    if (report.has_checkpoint() && report.checkpoint().metrics_size() > kMaxCheckpointMetrics) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint at step ", report.checkpoint().step(), ": ",
                       report.checkpoint().metrics_size(), " metric values, over the limit of ",
                       kMaxCheckpointMetrics));
    }
  }
  return absl::OkStatus();
}

absl::Status ReportIntake::Apply(const v1::ReportStageRequest& request, JobStateMachine* change) {
  if (absl::Status shape = CheckShape(request); !shape.ok()) return shape;
  const v1::AssignmentRef& ref = request.ref();
  v1::Job& job = change->mutable_job();
  v1::Stage* stage = FindStage(&job, ref.stage());
  const v1::ShardAttempt* shard = FindShard(stage, ref.shard_index());
  const auto now = ToProto(change->now());
  change->set_rewrite_job(false);
  int dropped_metrics = 0;
  // Counts past a per-job bound: the first report to cross one says so.
  const auto over = [](int64_t* counter, int64_t add, int64_t bound, bool* crossed) {
    const int64_t before = *counter;
    *counter = before + add;
    if (before <= bound && *counter > bound) *crossed = true;
    return *counter > bound;
  };
  bool points_crossed = false, logs_crossed = false, checkpoints_crossed = false;
  for (const v1::StageReport& report : request.reports()) {
    v1::Event event;
    int64_t counter;
    switch (report.body_case()) {
      case v1::StageReport::kProgress: {
        *stage->mutable_progress() = report.progress();
        v1::StageProgress* p = event.mutable_progress();
        p->set_stage(ref.stage());
        *p->mutable_progress() = report.progress();
        break;
      }
      case v1::StageReport::kMetric: {
        counter = job.metric_points();
        const bool dropped = over(&counter, 1, kMaxMetricPointsPerJob, &points_crossed);
        job.set_metric_points(counter);
        if (dropped) continue;
        if (job.latest_metrics_size() >= kMaxMetricNamesPerJob &&
            job.latest_metrics().count(report.metric().name()) == 0) {
          ++dropped_metrics;
          continue;  // a new name past the limit: no event, no store key
        }
        v1::MetricPoint* m = event.mutable_metric();
        *m = report.metric();
        m->set_stage(ref.stage());
        if (!m->has_time()) *m->mutable_time() = now;
        (*job.mutable_latest_metrics())[m->name()] = m->value();
        break;
      }
      case v1::StageReport::kLog: {
        counter = job.log_bytes();
        const int64_t bytes =
            static_cast<int64_t>(std::min(report.log().message().size(), kMaxLogBytes));
        const bool dropped = over(&counter, bytes, kMaxLogBytesPerJob, &logs_crossed);
        job.set_log_bytes(counter);
        if (dropped) continue;
        v1::LogLine* log = event.mutable_log();
        *log = report.log();
        if (log->message().size() > kMaxLogBytes) log->mutable_message()->resize(kMaxLogBytes);
        log->set_stage(ref.stage());
        if (log->agent_id().empty()) log->set_agent_id(shard->agent_id());
        if (!log->has_time()) *log->mutable_time() = now;
        break;
      }
      case v1::StageReport::kCheckpoint: {
        counter = job.checkpoint_records();
        const bool dropped = over(&counter, 1, kMaxCheckpointsPerJob, &checkpoints_crossed);
        job.set_checkpoint_records(counter);
        if (dropped) continue;
        v1::CheckpointRecord* record = event.mutable_checkpoint();
        *record = report.checkpoint();
        record->set_job_id(ref.job_id());
        if (!record->has_created_at()) *record->mutable_created_at() = now;
        v1::Artifact* artifact = record->mutable_artifact();
        if (artifact->name().empty()) artifact->set_name(protocol::CheckpointArtifactName(record->step()));
        if (artifact->id().empty()) {
          artifact->set_id(protocol::CheckpointArtifactId(ref.job_id(), artifact->name()));
        }
        artifact->set_produced_by(ref.stage());
        if (!artifact->has_created_at()) *artifact->mutable_created_at() = now;
        change->AddCheckpoint(*record);
        change->AddArtifact(*artifact);
        break;
      }
      default:
        break;  // refused by CheckShape
    }
    change->Emit(std::move(event));
  }
  const auto warn = [&](std::string message) {
    v1::Event event;
    v1::LogLine* log = event.mutable_log();
    log->set_stage(ref.stage());
    log->set_level("warning");
    log->set_agent_id(shard->agent_id());
    *log->mutable_time() = now;
    log->set_message(std::move(message));
    change->Emit(std::move(event));
  };
  if (dropped_metrics > 0) {
    warn(absl::StrCat("dropped ", dropped_metrics,
                      " metric point(s) with new names: the job already has ",
                      kMaxMetricNamesPerJob, " metric names, the limit"));
  }
  if (points_crossed) {
    warn(absl::StrCat("the job reached its limit of ", kMaxMetricPointsPerJob,
                      " metric points: later points are dropped (raise training.logging_steps)"));
  }
  if (logs_crossed) {
    warn(absl::StrCat("the job reached its limit of ", kMaxLogBytesPerJob >> 20,
                      " MiB of log text: later log lines are dropped"));
  }
  if (checkpoints_crossed) {
    warn(absl::StrCat("the job reached its limit of ", kMaxCheckpointsPerJob,
                      " checkpoint records: later checkpoints are not recorded"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Artifact>> ReportIntake::Outputs(
    const v1::CompleteStageRequest& request, const v1::Stage& stage, absl::Time now) {
  const v1::AssignmentRef& ref = request.ref();
  std::vector<v1::Artifact> outputs;
  for (v1::Artifact a : request.outputs()) {
    if (a.name().empty()) return absl::InvalidArgumentError("outputs.name: required");
    if (a.uri().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("outputs[", a.name(), "].uri: required"));
    }
    if (a.id().empty()) {
      a.set_id(protocol::OutputArtifactId(ref, stage.shard_count(), a.name()));
    }
    a.set_produced_by(ref.stage());
    if (!a.has_created_at()) *a.mutable_created_at() = ToProto(now);
    outputs.push_back(std::move(a));
  }
  return outputs;
}

}  // namespace bert::server
