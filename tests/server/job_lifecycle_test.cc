// The lifecycle transitions of the job state machine alone (RetryJob,
// PauseJob, ResumeJob): a job and a time in, the new job and its events out.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/job_model.h"
#include "server/job_state_machine.h"

namespace bert::server {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

v1::JobSpec Spec(int prep_shards = 1, int hosts = 1, int max_attempts = 2) {
  v1::JobSpec spec;
  spec.set_name("tiny");
  spec.mutable_corpus()->add_sources()->add_paths("data/a.txt");
  spec.mutable_resources()->set_prep_shards(prep_shards);
  spec.mutable_resources()->set_hosts(hosts);
  spec.mutable_resources()->set_max_attempts(max_attempts);
  return spec;
}

std::vector<v1::State> StageStates(const v1::Job& job) {
  std::vector<v1::State> out;
  for (const v1::Stage& s : job.stages()) out.push_back(s.state());
  return out;
}

// Runs every piece of the current stage to success until `kind` is current.
v1::Job RunUntil(v1::Job job, v1::StageKind kind) {
  for (int guard = 0; guard < 20; ++guard) {
    const v1::Stage* stage = CurrentStage(job);
    if (stage == nullptr || stage->kind() == kind) return job;
    std::vector<int32_t> pieces;
    for (const v1::ShardAttempt& s : stage->shards()) {
      if (s.state() == v1::QUEUED) pieces.push_back(s.shard_index());
    }
    JobStateMachine change(job, kT0);
    for (int32_t i : pieces)
      change.StartPiece(stage->kind(), i, "a" + std::to_string(i), std::nullopt);
    for (int32_t i : pieces) change.SucceedPiece(stage->kind(), i, {}, nullptr);
    job = change.job();
  }
  ADD_FAILURE() << "never reached " << v1::StageKind_Name(kind);
  return job;
}

v1::Job StartPretrain(int hosts = 1) {
  v1::Job job = RunUntil(
      JobStateMachine::Submit("j-1", Spec(1, hosts), "y", "alice", "", kT0).job(), v1::PRETRAIN);
  JobStateMachine change(job, kT0);
  for (int i = 0; i < hosts; ++i) {
    EXPECT_NE(change.StartPiece(v1::PRETRAIN, i, "gpu-" + std::to_string(i), std::nullopt),
              nullptr);
  }
  return change.job();
}

bool HasLog(const JobStateMachine& change, const std::string& needle) {
  for (const v1::Event& e : change.events()) {
    if (e.has_log() && e.log().message().find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(JobLifecycleTest, PausingRunningPretrainWaitsForTheCheckpointThenPausesJobAndStage) {
  v1::Job job = StartPretrain();
  JobStateMachine pause(job, kT0);
  ASSERT_TRUE(pause.RequestPause("alice", "need the GPU").ok());
  EXPECT_TRUE(pause.job().pause_requested());
  EXPECT_EQ(pause.job().state(), v1::RUNNING) << "pre-training must checkpoint first";
  EXPECT_TRUE(HasLog(pause, "pause requested by alice: need the GPU"));
  job = pause.job();

  // The worker checkpointed and stopped: its piece completes PAUSED_BY_USER.
  JobStateMachine stopped(job, kT0);
  stopped.FailPiece(v1::PRETRAIN, 0, v1::PAUSED_BY_USER, "paused at step 7", RetryPolicy());
  job = stopped.job();
  EXPECT_EQ(job.state(), v1::PAUSED);
  EXPECT_FALSE(job.pause_requested());
  const v1::Stage* pretrain = FindStage(job, v1::PRETRAIN);
  EXPECT_EQ(pretrain->state(), v1::PAUSED);
  EXPECT_TRUE(pretrain->agent_ids().empty()) << "no devices held";
  EXPECT_EQ(pretrain->shards(0).state(), v1::QUEUED);
  EXPECT_TRUE(pretrain->shards(0).agent_id().empty());
  EXPECT_EQ(AttemptsCounted(pretrain->shards(0)), 0) << "a pause uses no attempt";
  EXPECT_TRUE(stopped.retries().empty());
  EXPECT_FALSE(IsFinal(job.state()));

  // Resume: the job and the stage are queued, the piece ready at once.
  JobStateMachine resume(job, kT0 + absl::Minutes(5));
  ASSERT_TRUE(resume.Resume("alice").ok());
  job = resume.job();
  EXPECT_EQ(job.state(), v1::QUEUED);
  EXPECT_EQ(FindStage(job, v1::PRETRAIN)->state(), v1::QUEUED);
  EXPECT_EQ(ReadyTasks(*FindStage(job, v1::PRETRAIN), kT0 + absl::Minutes(5)).size(), 1u);

  // The next attempt runs with a new attempt number and the job succeeds.
  JobStateMachine again(job, kT0 + absl::Minutes(5));
  const v1::ShardAttempt* piece = again.StartPiece(v1::PRETRAIN, 0, "gpu-9", std::nullopt);
  ASSERT_NE(piece, nullptr);
  EXPECT_EQ(piece->attempt(), 2);
  EXPECT_EQ(again.job().state(), v1::RUNNING);
  again.SucceedPiece(v1::PRETRAIN, 0, {}, nullptr);
  EXPECT_EQ(CurrentStage(again.job())->kind(), v1::EXPORT);
}

TEST(JobLifecycleTest, AGangPausesOnlyOnceEveryRankStopped) {
  v1::Job job = StartPretrain(/*hosts=*/2);
  JobStateMachine pause(job, kT0);
  ASSERT_TRUE(pause.RequestPause("", "").ok());
  pause.FailPiece(v1::PRETRAIN, 1, v1::PAUSED_BY_USER, "", RetryPolicy());
  EXPECT_EQ(pause.job().state(), v1::RUNNING) << "rank 0 still runs";
  EXPECT_EQ(FindStage(pause.job(), v1::PRETRAIN)->agent_ids_size(), 1);
  pause.FailPiece(v1::PRETRAIN, 0, v1::PAUSED_BY_USER, "", RetryPolicy());
  EXPECT_EQ(pause.job().state(), v1::PAUSED);
  for (const v1::ShardAttempt& s : FindStage(pause.job(), v1::PRETRAIN)->shards()) {
    EXPECT_EQ(s.state(), v1::QUEUED);
  }
}

TEST(JobLifecycleTest, AQueuedJobPausesAtOnceAndADataStagePausesAtItsBoundary) {
  v1::Job queued = JobStateMachine::Submit("j-2", Spec(), "y", "a", "", kT0).job();
  JobStateMachine now(queued, kT0);
  ASSERT_TRUE(now.RequestPause("a", "").ok());
  EXPECT_EQ(now.job().state(), v1::PAUSED) << "nothing runs: paused at once";
  EXPECT_EQ(FindStage(now.job(), v1::PREPARE)->state(), v1::PAUSED);

  // A running PREPARE finishes; TOKENIZER is not started.
  v1::Job job = JobStateMachine::Submit("j-3", Spec(), "y", "a", "", kT0).job();
  JobStateMachine start(job, kT0);
  start.StartPiece(v1::PREPARE, 0, "cpu-1", std::nullopt);
  ASSERT_TRUE(start.RequestPause("a", "").ok());
  EXPECT_EQ(start.job().state(), v1::RUNNING);
  EXPECT_EQ(FindStage(start.job(), v1::PREPARE)->state(), v1::RUNNING);
  start.SucceedPiece(v1::PREPARE, 0, {}, nullptr);
  EXPECT_EQ(start.job().state(), v1::PAUSED);
  EXPECT_EQ(FindStage(start.job(), v1::PREPARE)->state(), v1::SUCCEEDED);
  EXPECT_EQ(FindStage(start.job(), v1::TOKENIZER)->state(), v1::PAUSED);
  EXPECT_EQ(FindStage(start.job(), v1::TOKENIZER)->shards(0).state(), v1::QUEUED);
  EXPECT_TRUE(start.RequestPause("a", "").ok()) << "pausing a paused job changes nothing";

  JobStateMachine resume(start.job(), kT0);
  ASSERT_TRUE(resume.Resume("a").ok());
  EXPECT_EQ(resume.job().state(), v1::QUEUED);
  EXPECT_EQ(FindStage(resume.job(), v1::TOKENIZER)->state(), v1::QUEUED);
}

TEST(JobLifecycleTest, AJobThatFinishesWhilePausingIsNotLeftPausing) {
  v1::Job job = StartPretrain();
  JobStateMachine change(job, kT0);
  ASSERT_TRUE(change.RequestPause("", "").ok());
  change.SucceedPiece(v1::PRETRAIN, 0, {}, nullptr);  // trained to the end just then
  EXPECT_EQ(change.job().state(), v1::PAUSED) << "paused before export";
  JobStateMachine cancel(change.job(), kT0);
  ASSERT_TRUE(cancel.Resume("").ok());
  ASSERT_TRUE(cancel.RequestPause("", "").ok());
  cancel.Cancel("");
  EXPECT_EQ(cancel.job().state(), v1::CANCELLED);
  EXPECT_FALSE(cancel.job().pause_requested());
}

TEST(JobLifecycleTest, ResumeBeforeThePauseTookEffectWithdrawsIt) {
  v1::Job job = StartPretrain();
  JobStateMachine change(job, kT0);
  ASSERT_TRUE(change.RequestPause("", "").ok());
  ASSERT_TRUE(change.Resume("").ok());
  EXPECT_FALSE(change.job().pause_requested());
  EXPECT_EQ(change.job().state(), v1::RUNNING);
  // The worker had already checkpointed: its piece is queued again and runs.
  change.FailPiece(v1::PRETRAIN, 0, v1::PAUSED_BY_USER, "", RetryPolicy());
  EXPECT_EQ(change.job().state(), v1::RUNNING);
  EXPECT_EQ(FindStage(change.job(), v1::PRETRAIN)->state(), v1::QUEUED);
  EXPECT_EQ(ReadyTasks(*FindStage(change.job(), v1::PRETRAIN), kT0).size(), 1u);
}

TEST(JobLifecycleTest, PauseAndResumeRefuseJobsInOtherStates) {
  v1::Job job = StartPretrain();
  JobStateMachine cancel(job, kT0);
  cancel.Cancel("");
  JobStateMachine pause(cancel.job(), kT0);
  const absl::Status paused = pause.RequestPause("", "");
  EXPECT_EQ(paused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(paused.message().find("CANCELLED"), std::string::npos) << paused;
  EXPECT_EQ(JobStateMachine(job, kT0).Resume("").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(JobStateMachine(job, kT0).Retry("").code(), absl::StatusCode::kFailedPrecondition)
      << "a running job is not retried";
  v1::Job deleting = cancel.job();
  deleting.set_delete_requested(true);
  EXPECT_EQ(JobStateMachine(deleting, kT0).Retry("").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(JobLifecycleTest, RetryKeepsFinishedStagesAndGivesFreshAttempts) {
  v1::Job job = StartPretrain();
  // Pre-training fails for good (attempts exhausted).
  for (int attempt = 1; attempt <= 2; ++attempt) {
    JobStateMachine change(job, kT0 + absl::Minutes(attempt));
    if (attempt > 1) change.StartPiece(v1::PRETRAIN, 0, "gpu-0", std::nullopt);
    change.FailPiece(v1::PRETRAIN, 0, v1::WORKER_CRASHED, "boom", RetryPolicy());
    job = change.job();
  }
  ASSERT_EQ(job.state(), v1::FAILED);
  ASSERT_EQ(StageStates(job), (std::vector<v1::State>{v1::SUCCEEDED, v1::SUCCEEDED, v1::SUCCEEDED,
                                                      v1::FAILED, v1::CANCELLED}));
  const v1::Artifact kept_output = FindStage(job, v1::PREPROCESS)->outputs_size() > 0
                                       ? FindStage(job, v1::PREPROCESS)->outputs(0)
                                       : v1::Artifact();

  JobStateMachine retry(job, kT0 + absl::Hours(1));
  ASSERT_TRUE(retry.Retry("alice").ok());
  job = retry.job();
  EXPECT_EQ(job.state(), v1::QUEUED);
  EXPECT_EQ(job.user_retries(), 1);
  EXPECT_EQ(job.failure_cause(), v1::FAILURE_CAUSE_UNSPECIFIED);
  EXPECT_FALSE(job.has_finished_at());
  EXPECT_EQ(StageStates(job), (std::vector<v1::State>{v1::SUCCEEDED, v1::SUCCEEDED, v1::SUCCEEDED,
                                                      v1::QUEUED, v1::QUEUED}));
  EXPECT_EQ(FindStage(job, v1::PREPROCESS)->outputs_size() > 0
                ? FindStage(job, v1::PREPROCESS)->outputs(0).id()
                : "",
            kept_output.id());
  const v1::Stage* pretrain = FindStage(job, v1::PRETRAIN);
  EXPECT_EQ(pretrain->failure_cause(), v1::FAILURE_CAUSE_UNSPECIFIED);
  ASSERT_EQ(pretrain->shards_size(), 1);
  EXPECT_EQ(pretrain->shards(0).state(), v1::QUEUED);
  EXPECT_EQ(pretrain->shards(0).attempt(), 2) << "attempt numbers keep rising";
  EXPECT_EQ(AttemptsCounted(pretrain->shards(0)), 0);
  EXPECT_TRUE(HasLog(retry, "retry 1 requested by alice; kept: prepare, tokenizer, preprocess"));
  EXPECT_EQ(ReadyTasks(*pretrain, kT0 + absl::Hours(1)).size(), 1u) << "no backoff left";

  // Fresh attempts: one failure is retried again, as for a new job.
  JobStateMachine run(job, kT0 + absl::Hours(1));
  EXPECT_EQ(run.StartPiece(v1::PRETRAIN, 0, "gpu-0", std::nullopt)->attempt(), 3);
  run.FailPiece(v1::PRETRAIN, 0, v1::WORKER_CRASHED, "boom", RetryPolicy());
  EXPECT_EQ(run.job().state(), v1::RUNNING);
  EXPECT_EQ(run.retries().size(), 1u);
}

TEST(JobLifecycleTest, RetryOfACancelledFanOutStageKeepsItsSucceededShards) {
  v1::Job job = JobStateMachine::Submit("j-4", Spec(/*prep_shards=*/2), "y", "a", "", kT0).job();
  JobStateMachine run(job, kT0);
  run.StartPiece(v1::PREPARE, 0, "cpu-0", std::nullopt);
  run.StartPiece(v1::PREPARE, 1, "cpu-1", std::nullopt);
  v1::Artifact part;
  part.set_id("j-4/prepare/shard-0/parts-00000");
  run.SucceedPiece(v1::PREPARE, 0, {part}, nullptr);
  run.Cancel("");
  job = run.job();
  ASSERT_EQ(job.state(), v1::CANCELLED);
  ASSERT_TRUE(job.cancel_requested());

  JobStateMachine retry(job, kT0);
  ASSERT_TRUE(retry.Retry("a").ok());
  const v1::Stage* prepare = FindStage(retry.job(), v1::PREPARE);
  EXPECT_FALSE(retry.job().cancel_requested());
  EXPECT_EQ(prepare->state(), v1::QUEUED);
  EXPECT_EQ(prepare->shards(0).state(), v1::SUCCEEDED);
  EXPECT_EQ(prepare->shards(0).outputs(0).id(), part.id());
  EXPECT_EQ(prepare->shards(1).state(), v1::QUEUED);
  EXPECT_EQ(FindStage(retry.job(), v1::TOKENIZER)->state(), v1::QUEUED);
  EXPECT_TRUE(FindStage(retry.job(), v1::TOKENIZER)->shards().empty())
      << "created when it is current";
  // Finishing shard 1 queues the join, as for a first run.
  JobStateMachine finish(retry.job(), kT0);
  finish.StartPiece(v1::PREPARE, 1, "cpu-1", std::nullopt);
  finish.SucceedPiece(v1::PREPARE, 1, {}, nullptr);
  EXPECT_EQ(FindStage(finish.job(), v1::PREPARE)->shards_size(), 3);
}

TEST(JobLifecycleTest, ARetriedJobCanBeRetriedAgainAndCountsItsRetries) {
  v1::Job job = StartPretrain();
  for (int n = 1; n <= 2; ++n) {
    JobStateMachine cancel(job, kT0);
    if (n > 1) cancel.StartPiece(v1::PRETRAIN, 0, "gpu-0", std::nullopt);
    cancel.Cancel("stop");
    JobStateMachine retry(cancel.job(), kT0);
    ASSERT_TRUE(retry.Retry("").ok());
    job = retry.job();
    EXPECT_EQ(job.user_retries(), n);
  }
}

}  // namespace
}  // namespace bert::server
