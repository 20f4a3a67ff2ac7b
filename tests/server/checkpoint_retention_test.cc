// training.save_total_limit in the controller's store, over real RPCs to an
// in-process bertd: checkpoints reported through real uploads (bertd://) and
// file:// uris under the artifact root; only the newest N stay, on disk and in
// ListCheckpoints, and the next stage still gets the newest. A restart finishes
// a delete that a crash interrupted (files gone, records left), and files
// outside the artifact root are never touched.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/artifact_transfer.h"
#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/controller.h"
#include "storage/store.h"
#include "storage/store_batch.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {
namespace fs = std::filesystem;

// Starts at PRETRAIN (dataset and tokenizer from the spec), keeping 2 checkpoints.
constexpr char kSpec[] = R"(name: retention
preprocess:
  from_dataset: ds
tokenizer:
  from: tok/tokenizer.json
model:
  preset: bert-tiny
training:
  save_total_limit: 2
)";

// A small checkpoint directory, as bert-worker writes one.
void WriteCheckpointDir(const fs::path& dir, int64_t step) {
  fs::create_directories(dir);
  std::ofstream(dir / "model.pt") << "weights of step " << step << std::string(1000, 'w');
  std::ofstream(dir / "trainer_state.json") << "{\"step\": " << step << "}";
}

class CheckpointRetentionTest : public ::testing::Test {
 protected:
  void Start() {
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = data_dir_.string();
    options.check_spec_paths = false;
    auto c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(c).value();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(controller_->port()),
                                   grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
    agents_ = v1::AgentService::NewStub(channel_);
  }
  void TearDown() override { controller_.reset(); }

  std::optional<v1::Assignment> Acquire() {
    grpc::ClientContext context;
    v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id("a1");
    v1::AcquireAssignmentResponse acquired;
    grpc::Status s = agents_->AcquireAssignment(&context, acquire, &acquired);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!acquired.has_assignment()) return std::nullopt;
    return acquired.assignment();
  }

  v1::AssignmentRef SubmitAndAcquire() {
    grpc::ClientContext c1;
    v1::SubmitJobRequest submit;
    submit.set_spec_yaml(kSpec);
    v1::SubmitJobResponse submitted;
    grpc::Status s = jobs_->SubmitJob(&c1, submit, &submitted);
    EXPECT_TRUE(s.ok()) << s.error_message();
    grpc::ClientContext c2;
    v1::RegisterRequest reg;
    reg.mutable_agent()->set_id("a1");
    reg.mutable_agent()->add_pools("cpu");
    reg.mutable_agent()->add_pools("train");
    v1::RegisterResponse registered;
    s = agents_->Register(&c2, reg, &registered);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::optional<v1::Assignment> a = Acquire();
    EXPECT_TRUE(a.has_value());
    return a ? a->ref() : v1::AssignmentRef();
  }

  grpc::Status ReportCheckpoint(const v1::AssignmentRef& ref, int64_t step,
                                const v1::Artifact& artifact) {
    grpc::ClientContext context;
    v1::ReportStageRequest request;
    *request.mutable_ref() = ref;
    v1::CheckpointRecord* c = request.add_reports()->mutable_checkpoint();
    c->set_step(step);
    *c->mutable_artifact() = artifact;
    v1::ReportStageResponse response;
    return agents_->ReportStage(&context, request, &response);
  }

  std::vector<int64_t> ListedSteps(const std::string& job_id) {
    grpc::ClientContext context;
    v1::ListCheckpointsRequest request;
    request.set_job_id(job_id);
    v1::ListCheckpointsResponse response;
    grpc::Status s = jobs_->ListCheckpoints(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<int64_t> steps;
    for (const v1::CheckpointRecord& r : response.checkpoints()) steps.push_back(r.step());
    return steps;
  }

  // The checkpoint directories on the controller's disk for a job's pretrain stage.
  std::vector<std::string> OnDisk(const std::string& job_id) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(artifact_root_ / job_id / "pretrain", ec)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  const bert::testing::TempDir temp_dir_{"retention_"};
  const fs::path dir_ = temp_dir_.path();
  const fs::path data_dir_ = dir_ / "data";
  const fs::path artifact_root_ = data_dir_ / "artifacts";
  std::unique_ptr<Controller> controller_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
};

TEST_F(CheckpointRetentionTest, OnlyTheNewestSaveTotalLimitCheckpointsStay) {
  Start();
  const v1::AssignmentRef ref = SubmitAndAcquire();
  ASSERT_EQ(ref.stage(), v1::PRETRAIN);
  const std::string job = ref.job_id();
  agent::ArtifactTransfer transfer(v1::AgentService::NewStub(channel_), agent::TransferOptions{});
  for (int64_t step = 1; step <= 5; ++step) {
    const std::string name = absl::StrCat("checkpoint-", step);
    const std::string id = absl::StrCat(job, "/pretrain/", name);
    v1::Artifact artifact;
    if (step % 2 == 1) {
      // Uploaded through the controller: stored at root/<id>, uri bertd://<id>.
      const fs::path local = dir_ / "agent" / name;
      WriteCheckpointDir(local, step);
      auto uploaded = transfer.Upload(ref, id, name, v1::PRETRAIN, local.string());
      ASSERT_TRUE(uploaded.ok()) << uploaded.status();
      artifact = *uploaded;
    } else {
      // Written by an agent on the shared filesystem, reported as file://.
      const fs::path shared = artifact_root_ / job / "pretrain" / name;
      WriteCheckpointDir(shared, step);
      artifact.set_id(id);
      artifact.set_name(name);
      artifact.set_is_directory(true);
      artifact.set_uri("file://" + shared.string());
    }
    ASSERT_TRUE(fs::exists(artifact_root_ / id)) << id;
    grpc::Status s = ReportCheckpoint(ref, step, artifact);
    ASSERT_TRUE(s.ok()) << s.error_message();
    const std::vector<int64_t> listed = ListedSteps(job);
    ASSERT_EQ(listed.size(), static_cast<size_t>(std::min<int64_t>(step, 2)))
        << "after step " << step;
    EXPECT_EQ(listed.back(), step);
  }
  EXPECT_EQ(ListedSteps(job), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(OnDisk(job), (std::vector<std::string>{"checkpoint-4", "checkpoint-5"}));
  EXPECT_TRUE(fs::exists(artifact_root_ / job / "pretrain" / "checkpoint-5" / "model.pt"));
  // The agent's own copies are not the controller's to delete.
  EXPECT_TRUE(fs::exists(dir_ / "agent" / "checkpoint-1" / "model.pt"));

  // The stage's success hands the newest checkpoint to the export.
  grpc::ClientContext context;
  v1::CompleteStageRequest complete;
  *complete.mutable_ref() = ref;
  complete.set_success(true);
  v1::CompleteStageResponse completed;
  grpc::Status s = agents_->CompleteStage(&context, complete, &completed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::optional<v1::Assignment> next = Acquire();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->ref().stage(), v1::EXPORT);
  bool newest = false;
  for (const v1::Artifact& in : next->inputs()) {
    newest |= in.name() == "checkpoint-5";
    EXPECT_NE(in.name(), "checkpoint-3");
  }
  EXPECT_TRUE(newest) << next->DebugString();
}

// A crash after the files went and before the records did: the restart's
// garbage-collect pass deletes the records (and any files left), keeps the
// newest N, and leaves files outside the artifact root alone.
TEST_F(CheckpointRetentionTest, ARestartFinishesAnInterruptedDelete) {
  const std::string job = "j-20260101-000000000-abcd";
  const fs::path outside = dir_ / "elsewhere" / "checkpoint-2";
  {
    fs::create_directories(artifact_root_);
    auto store = storage::Store::Open((data_dir_ / "db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    storage::StoreBatch batch;
    v1::Job record;
    record.set_id(job);
    record.set_name("interrupted");
    record.set_state(v1::SUCCEEDED);
    record.mutable_spec()->mutable_training()->set_save_total_limit(2);
    batch.PutJob(record);
    for (int64_t step = 1; step <= 5; ++step) {
      const std::string name = absl::StrCat("checkpoint-", step);
      v1::CheckpointRecord c;
      c.set_job_id(job);
      c.set_step(step);
      v1::Artifact* a = c.mutable_artifact();
      a->set_id(absl::StrCat(job, "/pretrain/", name));
      a->set_name(name);
      a->set_is_directory(true);
      if (step == 2) {
        a->set_uri("file://" + outside.string());
        WriteCheckpointDir(outside, step);
      } else {
        a->set_uri("bertd://" + a->id());
        // Step 1's files are gone already (the interrupted delete); 3's half.
        if (step >= 3) WriteCheckpointDir(artifact_root_ / a->id(), step);
        if (step == 3) fs::remove(artifact_root_ / a->id() / "model.pt");
      }
      batch.PutCheckpoint(c);
      batch.PutArtifact(*a);
    }
    ASSERT_TRUE((*store)->Write(batch).ok());
  }
  Start();
  EXPECT_EQ(ListedSteps(job), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(OnDisk(job), (std::vector<std::string>{"checkpoint-4", "checkpoint-5"}));
  EXPECT_TRUE(fs::exists(outside / "model.pt"));
  // The artifact records went with the checkpoint records.
  controller_.reset();
  auto store = storage::Store::Open((data_dir_ / "db").string());
  ASSERT_TRUE(store.ok()) << store.status();
  for (int64_t step = 1; step <= 5; ++step) {
    auto artifact = (*store)->GetArtifact(absl::StrCat(job, "/pretrain/checkpoint-", step));
    ASSERT_TRUE(artifact.ok()) << artifact.status();
    EXPECT_EQ(artifact->has_value(), step >= 4) << "step " << step;
  }
}

}  // namespace
}  // namespace bert::server
