// Report intake alone: reports are checked against the live attempt they
// name, then become events on the job's change without rewriting the job.
#include "server/report_intake.h"

#include "gtest/gtest.h"
#include "server/job_model.h"

namespace bert::server {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

v1::Job RunningJob() {
  v1::JobSpec spec;
  spec.mutable_resources()->set_prep_shards(2);
  JobStateMachine submit = JobStateMachine::Submit("j-1", spec, "y", "alice", "", kT0);
  JobStateMachine start(submit.job(), kT0);
  start.StartPiece(v1::PREPARE, 0, "agent-a", std::nullopt);
  return start.job();
}

v1::AssignmentRef Ref(int attempt = 1, int shard = 0) {
  v1::AssignmentRef ref;
  ref.set_job_id("j-1");
  ref.set_stage(v1::PREPARE);
  ref.set_shard_index(shard);
  ref.set_attempt(attempt);
  return ref;
}

TEST(ReportIntakeTest, OnlyTheLiveAttemptMayReport) {
  const v1::Job job = RunningJob();
  EXPECT_TRUE(CheckLive(&job, Ref()).ok());
  EXPECT_TRUE(absl::IsNotFound(CheckLive(nullptr, Ref())));
  absl::Status stale = CheckLive(&job, Ref(2));
  EXPECT_TRUE(absl::IsFailedPrecondition(stale));
  EXPECT_NE(stale.message().find("stale"), std::string::npos) << stale;
  EXPECT_TRUE(absl::IsFailedPrecondition(CheckLive(&job, Ref(1, 1)))) << "queued, not running";
  EXPECT_TRUE(absl::IsFailedPrecondition(CheckLive(&job, Ref(1, 7)))) << "no such piece";
}

TEST(ReportIntakeTest, ReportsBecomeEventsWithoutRewritingTheJob) {
  JobStateMachine change(RunningJob(), kT0);
  const int64_t seq = change.job().last_event_seq();
  v1::ReportStageRequest request;
  *request.mutable_ref() = Ref();
  request.add_reports()->mutable_progress()->set_done(5);
  v1::MetricPoint* metric = request.add_reports()->mutable_metric();
  metric->set_name("train/loss");
  metric->set_value(2.5);
  request.add_reports()->mutable_log()->set_message(std::string(100 << 10, 'x'));
  v1::CheckpointRecord* checkpoint = request.add_reports()->mutable_checkpoint();
  checkpoint->set_step(40);
  ASSERT_TRUE(ReportIntake::Apply(request, &change).ok());
  EXPECT_FALSE(change.rewrite_job());
  ASSERT_EQ(change.events().size(), 4u);
  EXPECT_EQ(change.events()[0].seq(), seq + 1);
  EXPECT_EQ(change.job().last_event_seq(), seq + 4);
  EXPECT_EQ(FindStage(change.job(), v1::PREPARE)->progress().done(), 5);
  EXPECT_EQ(change.job().latest_metrics().at("train/loss"), 2.5);
  EXPECT_EQ(change.events()[2].log().message().size(), ReportIntake::kMaxLogBytes);
  EXPECT_EQ(change.events()[2].log().agent_id(), "agent-a");
  ASSERT_EQ(change.checkpoints().size(), 1u);
  EXPECT_EQ(change.checkpoints()[0].artifact().id(), "j-1/pretrain/checkpoint-40");
  ASSERT_EQ(change.artifacts().size(), 1u);
}

// Past a job's bound on metric points or log text, reports of that kind are
// dropped (counted, no event) and one warning marks the crossing.
TEST(ReportIntakeTest, MetricPointsAndLogTextPerJobAreBounded) {
  v1::Job job = RunningJob();
  job.set_metric_points(ReportIntake::kMaxMetricPointsPerJob - 1);
  job.set_log_bytes(ReportIntake::kMaxLogBytesPerJob - 10);
  const auto request = [] {
    v1::ReportStageRequest r;
    *r.mutable_ref() = Ref();
    for (int i = 0; i < 3; ++i) {
      v1::MetricPoint* m = r.add_reports()->mutable_metric();
      m->set_name("train/loss");
      m->set_value(i);
      r.add_reports()->mutable_log()->set_message("eight by");
    }
    return r;
  };
  JobStateMachine first(job, kT0);
  ASSERT_TRUE(ReportIntake::Apply(request(), &first).ok());
  int metrics = 0, logs = 0, warnings = 0;
  for (const v1::Event& e : first.events()) {
    metrics += e.has_metric();
    logs += e.has_log() && e.log().level() != "warning";
    warnings += e.has_log() && e.log().level() == "warning";
  }
  EXPECT_EQ(metrics, 1);  // the last point under the bound
  EXPECT_EQ(logs, 1);     // 10 bytes left: the first line fits, the second crosses
  EXPECT_EQ(warnings, 2);
  EXPECT_EQ(first.job().metric_points(), ReportIntake::kMaxMetricPointsPerJob + 2);
  EXPECT_EQ(first.job().latest_metrics().at("train/loss"), 0);
  // A later report: everything dropped, no new warning.
  JobStateMachine second(first.job(), kT0);
  ASSERT_TRUE(ReportIntake::Apply(request(), &second).ok());
  EXPECT_TRUE(second.events().empty());
  EXPECT_EQ(second.job().metric_points(), ReportIntake::kMaxMetricPointsPerJob + 5);
}

TEST(ReportIntakeTest, MalformedReportsAreRefusedWholeAndNamed) {
  v1::ReportStageRequest request;
  *request.mutable_ref() = Ref();
  request.add_reports()->mutable_progress()->set_done(1);
  request.add_reports()->mutable_metric()->set_value(1);  // no name
  JobStateMachine change(RunningJob(), kT0);
  absl::Status status = ReportIntake::Apply(request, &change);
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("metric.name"), std::string::npos);
  EXPECT_TRUE(change.events().empty()) << "nothing applied";
  v1::ReportStageRequest empty_body;
  empty_body.add_reports();
  EXPECT_TRUE(absl::IsInvalidArgument(ReportIntake::CheckShape(empty_body)));
  v1::ReportStageRequest flood;
  for (int i = 0; i <= ReportIntake::kMaxReportsPerCall; ++i) flood.add_reports()->mutable_progress();
  EXPECT_TRUE(absl::IsInvalidArgument(ReportIntake::CheckShape(flood)));
}

TEST(ReportIntakeTest, OutputsGetIdsByTheArtifactIdRule) {
  const v1::Job job = RunningJob();
  v1::CompleteStageRequest request;
  *request.mutable_ref() = Ref();
  v1::Artifact* out = request.add_outputs();
  out->set_name("parts-00000");
  out->set_uri("bertd://x");
  auto outputs = ReportIntake::Outputs(request, *FindStage(job, v1::PREPARE), kT0);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  EXPECT_EQ((*outputs)[0].id(), "j-1/prepare/shard-0/parts-00000");
  EXPECT_EQ((*outputs)[0].produced_by(), v1::PREPARE);
  request.mutable_outputs(0)->clear_uri();
  EXPECT_TRUE(absl::IsInvalidArgument(
      ReportIntake::Outputs(request, *FindStage(job, v1::PREPARE), kT0).status()));
}

}  // namespace
}  // namespace bert::server
