// The job state machine alone: a job and a time in, the job's new state and
// the events that describe it out. No store, no network.
#include "server/job_state_machine.h"

#include "gtest/gtest.h"
#include "server/job_model.h"

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

TEST(JobStateMachineTest, SubmitQueuesTheFirstStageWithItsPiecesAndDenseEvents) {
  JobStateMachine change = JobStateMachine::Submit("j-1", Spec(3), "yaml", "alice", "", kT0);
  const v1::Job& job = change.job();
  EXPECT_EQ(job.state(), v1::QUEUED);
  ASSERT_EQ(job.stages_size(), 5);
  EXPECT_EQ(job.stages(0).kind(), v1::PREPARE);
  EXPECT_EQ(job.stages(0).shards_size(), 3);  // pieces of the current stage only
  EXPECT_EQ(job.stages(1).shards_size(), 0);
  for (size_t i = 0; i < change.events().size(); ++i) {
    EXPECT_EQ(change.events()[i].seq(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(change.events()[i].job_id(), "j-1");
  }
  EXPECT_EQ(job.last_event_seq(), static_cast<int64_t>(change.events().size()));
  EXPECT_TRUE(change.rewrite_job());
}

TEST(JobStateMachineTest, ASuppliedTokenizerSkipsItsStageAndRecordsTheArtifact) {
  v1::JobSpec spec = Spec();
  spec.mutable_tokenizer()->set_from("/models/tok");
  JobStateMachine change = JobStateMachine::Submit("j-2", spec, "yaml", "alice", "", kT0);
  const v1::Stage* tokenizer = FindStage(change.job(), v1::TOKENIZER);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->state(), v1::SKIPPED);
  ASSERT_EQ(tokenizer->outputs_size(), 1);
  EXPECT_EQ(tokenizer->outputs(0).id(), "j-2/tokenizer/tokenizer");
  EXPECT_EQ(tokenizer->outputs(0).uri(), "file:///models/tok");
  ASSERT_EQ(change.artifacts().size(), 1u);
}

TEST(JobStateMachineTest, FanOutPiecesSucceedThenAJoinThenTheStage) {
  v1::Job job = JobStateMachine::Submit("j-3", Spec(2), "y", "a", "", kT0).job();
  for (int i = 0; i < 2; ++i) {
    JobStateMachine change(job, kT0);
    ASSERT_NE(change.StartPiece(v1::PREPARE, i, "agent-" + std::to_string(i), std::nullopt), nullptr);
    job = change.job();
  }
  EXPECT_EQ(job.state(), v1::RUNNING);
  EXPECT_EQ(FindStage(job, v1::PREPARE)->agent_ids_size(), 2);
  for (int i = 0; i < 2; ++i) {
    JobStateMachine change(job, kT0);
    v1::Artifact out;
    out.set_id("j-3/prepare/shard-" + std::to_string(i) + "/parts");
    change.SucceedPiece(v1::PREPARE, i, {out}, nullptr);
    job = change.job();
  }
  const v1::Stage* prepare = FindStage(job, v1::PREPARE);
  ASSERT_EQ(prepare->shards_size(), 3) << "a join piece is queued";
  EXPECT_EQ(prepare->shards(2).state(), v1::QUEUED);
  EXPECT_EQ(prepare->state(), v1::RUNNING);
  JobStateMachine join(job, kT0);
  join.StartPiece(v1::PREPARE, 2, "agent-0", std::nullopt);
  v1::Artifact corpus;
  corpus.set_id("j-3/prepare/corpus");
  join.SucceedPiece(v1::PREPARE, 2, {corpus}, nullptr);
  job = join.job();
  EXPECT_EQ(FindStage(job, v1::PREPARE)->state(), v1::SUCCEEDED);
  ASSERT_EQ(FindStage(job, v1::PREPARE)->outputs_size(), 1);
  EXPECT_EQ(FindStage(job, v1::PREPARE)->outputs(0).id(), "j-3/prepare/corpus");
  EXPECT_EQ(CurrentStage(job)->kind(), v1::TOKENIZER);
  EXPECT_EQ(CurrentStage(job)->shards_size(), 1);
}

TEST(JobStateMachineTest, ALostGangRankRequeuesTheWholeGangWithBackoff) {
  v1::JobSpec spec = Spec(1, 2);
  v1::Job job = JobStateMachine::Submit("j-4", spec, "y", "a", "", kT0).job();
  // Skip ahead to pretrain: mark the earlier stages done.
  for (v1::Stage& s : *job.mutable_stages()) {
    if (s.kind() < v1::PRETRAIN) s.set_state(v1::SUCCEEDED);
  }
  job.mutable_stages(0)->clear_shards();
  JobStateMachine advance(job, kT0);
  advance.Advance();
  job = advance.job();
  ASSERT_EQ(FindStage(job, v1::PRETRAIN)->shards_size(), 2);
  JobStateMachine start(job, kT0);
  start.StartPiece(v1::PRETRAIN, 0, "a0", std::nullopt);
  start.StartPiece(v1::PRETRAIN, 1, "a1", std::nullopt);
  job = start.job();
  RetryPolicy retry;
  retry.backoff_base = absl::Seconds(4);
  JobStateMachine lost(job, kT0);
  lost.FailPiece(v1::PRETRAIN, 1, v1::AGENT_LOST, "gone", retry);
  const v1::Stage* pretrain = FindStage(lost.job(), v1::PRETRAIN);
  EXPECT_EQ(pretrain->state(), v1::QUEUED);
  for (const v1::ShardAttempt& s : pretrain->shards()) {
    EXPECT_EQ(s.state(), v1::QUEUED);
    EXPECT_TRUE(s.agent_id().empty());
    EXPECT_EQ(s.not_before().seconds(), absl::ToUnixSeconds(kT0 + absl::Seconds(4)));
  }
  ASSERT_EQ(lost.retries().size(), 1u);
  EXPECT_EQ(lost.retries()[0].second, v1::AGENT_LOST);
  EXPECT_EQ(lost.job().state(), v1::RUNNING);
}

TEST(JobStateMachineTest, ADataErrorIsNeverRetriedAndFailsTheJob) {
  v1::Job job = JobStateMachine::Submit("j-5", Spec(), "y", "a", "", kT0).job();
  JobStateMachine start(job, kT0);
  start.StartPiece(v1::PREPARE, 0, "a0", std::nullopt);
  JobStateMachine fail(start.job(), kT0);
  fail.FailPiece(v1::PREPARE, 0, v1::DATA_ERROR, "bad line 7", RetryPolicy());
  EXPECT_EQ(fail.job().state(), v1::FAILED);
  EXPECT_EQ(fail.job().failure_cause(), v1::DATA_ERROR);
  EXPECT_EQ(StageStates(fail.job()),
            (std::vector<v1::State>{v1::FAILED, v1::CANCELLED, v1::CANCELLED, v1::CANCELLED,
                                    v1::CANCELLED}));
  EXPECT_TRUE(fail.retries().empty());
}

TEST(JobStateMachineTest, RetriesStopAtTheAttemptLimit) {
  v1::Job job = JobStateMachine::Submit("j-6", Spec(1, 1, 2), "y", "a", "", kT0).job();
  for (int attempt = 1; attempt <= 2; ++attempt) {
    JobStateMachine start(job, kT0);
    start.StartPiece(v1::PREPARE, 0, "a0", std::nullopt);
    JobStateMachine fail(start.job(), kT0);
    fail.FailPiece(v1::PREPARE, 0, v1::WORKER_CRASHED, "boom", RetryPolicy());
    job = fail.job();
  }
  EXPECT_EQ(job.state(), v1::FAILED);
  EXPECT_EQ(job.failure_cause(), v1::RETRIES_EXHAUSTED);
}

TEST(JobStateMachineTest, CancelCancelsEveryUnfinishedStageAndPiece) {
  v1::Job job = JobStateMachine::Submit("j-7", Spec(2), "y", "a", "", kT0).job();
  JobStateMachine start(job, kT0);
  start.StartPiece(v1::PREPARE, 0, "a0", std::nullopt);
  JobStateMachine cancel(start.job(), kT0);
  cancel.Cancel("");
  EXPECT_EQ(cancel.job().state(), v1::CANCELLED);
  EXPECT_TRUE(cancel.job().cancel_requested());
  for (const v1::ShardAttempt& s : FindStage(cancel.job(), v1::PREPARE)->shards()) {
    EXPECT_EQ(s.state(), v1::CANCELLED);
    EXPECT_TRUE(s.agent_id().empty());
  }
  EXPECT_EQ(cancel.job().failure_message(), "cancelled by user");
}

TEST(JobStateMachineTest, APretrainStageWithoutOutputsTakesTheNewestCheckpoint) {
  v1::Job job = JobStateMachine::Submit("j-8", Spec(), "y", "a", "", kT0).job();
  for (v1::Stage& s : *job.mutable_stages()) {
    if (s.kind() < v1::PRETRAIN) s.set_state(v1::SUCCEEDED);
  }
  JobStateMachine advance(job, kT0);
  advance.Advance();
  JobStateMachine start(advance.job(), kT0);
  start.StartPiece(v1::PRETRAIN, 0, "a0", std::nullopt);
  JobStateMachine done(start.job(), kT0);
  done.SucceedPiece(v1::PRETRAIN, 0, {}, [] {
    v1::Artifact a;
    a.set_id("j-8/pretrain/checkpoint-10");
    return std::optional<v1::Artifact>(a);
  });
  const v1::Stage* pretrain = FindStage(done.job(), v1::PRETRAIN);
  EXPECT_EQ(pretrain->state(), v1::SUCCEEDED);
  ASSERT_EQ(pretrain->outputs_size(), 1);
  EXPECT_EQ(pretrain->outputs(0).id(), "j-8/pretrain/checkpoint-10");
  EXPECT_EQ(CurrentStage(done.job())->kind(), v1::EXPORT);
}

}  // namespace
}  // namespace bert::server
