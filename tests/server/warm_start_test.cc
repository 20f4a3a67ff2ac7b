// Warm start in the controller (server/warm_start.h): model.from "job:<id>"
// is resolved at submit against what the submitter may see and what that
// job holds, and the resolved artifacts reach the stages that read them.
#include "server/warm_start.h"

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/clock.h"
#include "server/event_bus.h"
#include "server/job_manager.h"
#include "storage/store.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {

constexpr char kSource[] = R"(name: source
corpus:
  sources: [data.txt]
preprocess:
  max_seq_length: 64
model:
  preset: bert-tiny
  hidden_dropout_prob: 0
training:
  max_steps: 10
)";

std::string WarmSpec(const std::string& from, const std::string& extra = "") {
  return "name: warm\ncorpus:\n  sources: [data.txt]\npreprocess:\n  max_seq_length: 64\nmodel:\n  "
         "from: " +
         from + "\n" + extra;
}

class WarmStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::Store::Open(temp_dir_.path().string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
    JobManagerOptions options;
    options.check_spec_paths = false;
    auto manager = JobManager::Create(store_.get(), &bus_, &clock_, options);
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = std::move(manager).value();
    v1::AgentInfo agent;
    agent.set_id("a1");
    agent.set_hostname("a1.local");
    agent.add_pools("cpu");
    agent.add_pools("train");
    agent.mutable_resources()->set_accelerator(v1::CPU);
    ASSERT_TRUE(manager_->Register(agent).ok());
  }

  absl::StatusOr<SubmitResult> Submit(const std::string& yaml, const std::string& who,
                                      bool admin = false) {
    v1::SubmitJobRequest request;
    request.set_spec_yaml(yaml);
    return manager_->Submit(request, who, admin);
  }

  // Runs `job`'s current stage to success with outputs named as the real
  // stages name theirs; returns the assignment it ran.
  std::optional<v1::Assignment> RunStage(const std::string& output) {
    auto a = manager_->Acquire("a1", absl::ZeroDuration());
    EXPECT_TRUE(a.ok() && a->has_value());
    if (!a.ok() || !a->has_value()) return std::nullopt;
    v1::CompleteStageRequest done;
    *done.mutable_ref() = (*a)->ref();
    done.set_success(true);
    v1::Artifact* out = done.add_outputs();
    out->set_name(output);
    out->set_uri("file:///tmp/" + output);
    out->set_sha256("00");
    EXPECT_TRUE(manager_->Complete(done).ok());
    return *a;
  }

  // Alice's source job, run through every stage to SUCCEEDED.
  v1::Job SucceededSource() {
    auto submitted = Submit(kSource, "alice");
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    for (const char* output : {"corpus", "tokenizer", "dataset", "checkpoint-10", "model"})
      RunStage(output);
    auto job = manager_->GetJob(submitted->job.id());
    EXPECT_EQ(job->state(), v1::SUCCEEDED) << job->DebugString();
    return *job;
  }

  const bert::testing::TempDir temp_dir_{"warm_"};
  FakeClock clock_;
  EventBus bus_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<JobManager> manager_;
};

TEST_F(WarmStartTest, AnotherJobsModelIsRefusedUnlessSucceededAndVisible) {
  auto running = Submit(kSource, "alice");
  ASSERT_TRUE(running.ok());
  const std::string id = running->job.id();

  // Bob may not see Alice's job: told exactly as if it did not exist.
  auto bob = Submit(WarmSpec("job:" + id), "bob");
  EXPECT_EQ(bob.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(bob.status().message().find("no job '" + id + "' that you may see"), std::string::npos)
      << bob.status();
  auto missing = Submit(WarmSpec("job:j-nope"), "alice");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no job 'j-nope' that you may see"), std::string::npos)
      << missing.status();

  // Alice's job has not succeeded: no exported model to start from.
  auto unfinished = Submit(WarmSpec("job:" + id), "alice");
  EXPECT_EQ(unfinished.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(unfinished.status().message().find("has not succeeded (it is QUEUED)"),
            std::string::npos)
      << unfinished.status();
  EXPECT_NE(unfinished.status().message().find("'job:" + id + "/checkpoint-<step>'"),
            std::string::npos);
  // Nor a checkpoint it never recorded.
  auto no_checkpoint = Submit(WarmSpec("job:" + id + "/checkpoint-5"), "alice");
  EXPECT_EQ(no_checkpoint.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(no_checkpoint.status().message().find("has no recorded checkpoint-5"),
            std::string::npos)
      << no_checkpoint.status();

  int jobs = 0;
  ASSERT_TRUE(store_->ForEachJob([&](const v1::Job&) { return ++jobs, true; }).ok());
  EXPECT_EQ(jobs, 1);  // nothing refused was stored
}

TEST_F(WarmStartTest, ASucceededJobsModelReachesTheStagesThatReadIt) {
  const v1::Job source = SucceededSource();
  const std::string model_id = source.id() + "/export/model";

  EXPECT_EQ(Submit(WarmSpec("job:" + source.id()), "bob").status().code(),
            absl::StatusCode::kNotFound);
  auto admin = Submit(WarmSpec("job:" + source.id()), "root", /*admin=*/true);
  ASSERT_TRUE(admin.ok()) << admin.status();
  ASSERT_TRUE(manager_->Cancel(admin->job.id(), "not needed").ok());

  auto warm = Submit(WarmSpec("job:" + source.id()), "alice");
  ASSERT_TRUE(warm.ok()) << warm.status();
  const v1::Job& job = warm->job;
  // The architecture is the source's; the dropout it set stays its own.
  EXPECT_EQ(job.spec().model().hidden_size(), 128);
  EXPECT_EQ(job.spec().model().num_hidden_layers(), 2);
  EXPECT_DOUBLE_EQ(job.spec().model().hidden_dropout_prob(), 0);
  ASSERT_EQ(job.warm_start_inputs_size(), 2);
  EXPECT_EQ(job.warm_start_inputs(0).id(), model_id);
  EXPECT_EQ(job.warm_start_inputs(0).produced_by(), v1::EXPORT);
  EXPECT_EQ(job.warm_start_inputs(1).produced_by(), v1::TOKENIZER);
  EXPECT_TRUE(IsWarmStartInput(job, model_id));
  EXPECT_FALSE(IsWarmStartInput(job, source.id() + "/pretrain/checkpoint-10"));
  for (const v1::Stage& stage : job.stages()) {
    EXPECT_EQ(stage.state() == v1::SKIPPED, stage.kind() == v1::TOKENIZER)
        << v1::StageKind_Name(stage.kind());
  }

  auto has_input = [](const v1::Assignment& a, v1::StageKind produced_by) {
    for (const v1::Artifact& in : a.inputs()) {
      if (in.produced_by() == produced_by && in.id().rfind("j-", 0) == 0 &&
          in.id().find("/export/model") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  auto prepare = RunStage("corpus");
  ASSERT_TRUE(prepare);
  EXPECT_FALSE(has_input(*prepare, v1::TOKENIZER));
  auto preprocess = RunStage("dataset");
  ASSERT_TRUE(preprocess);
  EXPECT_EQ(preprocess->ref().stage(), v1::PREPROCESS);
  EXPECT_TRUE(has_input(*preprocess, v1::TOKENIZER));  // the model's vocab.txt
  EXPECT_FALSE(has_input(*preprocess, v1::EXPORT));
  auto pretrain = RunStage("checkpoint-10");
  ASSERT_TRUE(pretrain);
  EXPECT_EQ(pretrain->ref().stage(), v1::PRETRAIN);
  EXPECT_TRUE(has_input(*pretrain, v1::EXPORT));  // the weights
  EXPECT_FALSE(has_input(*pretrain, v1::TOKENIZER));
  auto exported = RunStage("model");
  ASSERT_TRUE(exported);
  EXPECT_TRUE(has_input(*exported, v1::TOKENIZER));
  EXPECT_EQ(manager_->GetJob(job.id())->state(), v1::SUCCEEDED);
}

// A job an unfinished warm start reads cannot be deleted until that job ends.
TEST_F(WarmStartTest, TheSourceOfAnUnfinishedWarmStartIsNotDeleted) {
  const v1::Job source = SucceededSource();
  auto warm = Submit(WarmSpec("job:" + source.id()), "alice");
  ASSERT_TRUE(warm.ok()) << warm.status();
  const auto refused = manager_->Delete(source.id());
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(std::string(refused.status().message())
                .find("warm start (model.from) of unfinished job " + warm->job.id()),
            std::string::npos)
      << refused.status();
  EXPECT_EQ(manager_->GetJob(source.id())->state(), v1::SUCCEEDED);  // untouched
  ASSERT_TRUE(manager_->Cancel(warm->job.id(), "done with it").ok());
  const auto deleted = manager_->Delete(source.id());
  EXPECT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(manager_->GetJob(source.id()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(WarmStartTest, AJobsCheckpointAndADirectory) {
  const v1::Job source = SucceededSource();
  auto warm = Submit(WarmSpec("job:" + source.id() + "/checkpoint-10"), "alice");
  ASSERT_TRUE(warm.ok()) << warm.status();
  ASSERT_EQ(warm->job.warm_start_inputs_size(), 2);
  EXPECT_EQ(warm->job.warm_start_inputs(0).id(), source.id() + "/pretrain/checkpoint-10");
  EXPECT_EQ(warm->job.warm_start_inputs(1).id(),
            source.id() + "/tokenizer/tokenizer");  // its tokenizer

  // Blocks longer than the source model's positions (bert-tiny: 512).
  auto too_long = Submit(
      "name: w\ncorpus:\n  sources: [d.txt]\npreprocess:\n  max_seq_length: 1024\n"
      "model:\n  from: job:" +
          source.id() + "\n",
      "alice");
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("exceeds the max_position_embeddings (512)"),
            std::string::npos)
      << too_long.status();

  // A directory is recorded by path under the new job, as tokenizer.from is.
  auto dir = Submit(WarmSpec("/models/bert-base-uncased"), "alice");
  ASSERT_TRUE(dir.ok()) << dir.status();
  ASSERT_EQ(dir->job.warm_start_inputs_size(), 1);
  const v1::Artifact& input = dir->job.warm_start_inputs(0);
  EXPECT_EQ(input.id(), dir->job.id() + "/pretrain/warm-start");
  EXPECT_EQ(input.uri(), "file:///models/bert-base-uncased");
  EXPECT_TRUE(input.sha256().empty());
  auto recorded = store_->GetArtifact(input.id());
  ASSERT_TRUE(recorded.ok() && recorded->has_value());
  EXPECT_EQ(dir->job.spec().tokenizer().from(), "/models/bert-base-uncased");
}

}  // namespace
}  // namespace bert::server
