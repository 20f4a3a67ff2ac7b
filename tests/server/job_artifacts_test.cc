// A job's artifacts for its users: JobArtifacts over a real store (what is
// listed, what belongs to the job), and JobService.PullArtifact over real
// gRPC (resume from held bytes, verification, the job check, who may pull).
#include <filesystem>
#include <fstream>

#include "agent/artifact_transfer.h"
#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "client/bert_client.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "protocol/artifact_download.h"
#include "protocol/artifact_manifest.h"
#include "server/controller.h"
#include "server/job_artifacts.h"
#include "storage/store.h"
#include "storage/store_batch.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {
namespace fs = std::filesystem;

v1::Artifact Recorded(const std::string& id, const std::string& name, v1::StageKind by) {
  v1::Artifact a;
  a.set_id(id);
  a.set_name(name);
  a.set_uri("bertd://" + id);
  a.set_size_bytes(10);
  a.set_sha256(Sha256Hex(id));
  a.set_is_directory(true);
  a.set_produced_by(by);
  return a;
}

class JobArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::Store::Open(temp_.File("db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
    job_.set_id("j1");
    auto add_stage = [&](v1::StageKind kind, std::vector<v1::Artifact> outputs) {
      v1::Stage* stage = job_.add_stages();
      stage->set_kind(kind);
      for (auto& a : outputs) *stage->add_outputs() = a;
    };
    // A spec-supplied tokenizer is recorded as a path, without content.
    v1::Artifact supplied;
    supplied.set_id("j1/tokenizer/tokenizer");
    supplied.set_name("tokenizer");
    supplied.set_uri("file:///data/tok");
    add_stage(v1::PREPARE, {Recorded("j1/prepare/corpus", "corpus", v1::PREPARE),
                            Recorded("j1/prepare/parts-00001", "parts-00001", v1::PREPARE)});
    add_stage(v1::TOKENIZER, {supplied});
    add_stage(v1::PREPROCESS, {Recorded("j1/preprocess/dataset", "dataset", v1::PREPROCESS)});
    add_stage(v1::PRETRAIN, {Recorded("j1/pretrain/checkpoint-20", "checkpoint-20", v1::PRETRAIN)});
    add_stage(v1::EXPORT, {Recorded("j1/export/model", "model", v1::EXPORT)});
    storage::StoreBatch batch;
    batch.PutJob(job_);
    for (const auto& stage : job_.stages()) {
      for (const auto& a : stage.outputs()) batch.PutArtifact(a);
    }
    batch.PutArtifact(Recorded("j1/pretrain/tensorboard", "tensorboard", v1::PRETRAIN));
    for (int step : {10, 20}) {
      v1::CheckpointRecord record;
      record.set_job_id("j1");
      record.set_step(step);
      *record.mutable_artifact() = Recorded("j1/pretrain/checkpoint-" + std::to_string(step),
                                            "checkpoint-" + std::to_string(step), v1::PRETRAIN);
      batch.PutCheckpoint(record);
      batch.PutArtifact(record.artifact());
    }
    // Another job's model.
    batch.PutArtifact(Recorded("j2/export/model", "model", v1::EXPORT));
    ASSERT_TRUE(store_->Write(batch).ok());
  }

  static std::vector<std::string> Names(const std::vector<v1::Artifact>& artifacts) {
    std::vector<std::string> names;
    for (const auto& a : artifacts) names.push_back(a.name());
    return names;
  }

  bert::testing::TempDir temp_{"job_artifacts_"};
  std::unique_ptr<storage::Store> store_;
  v1::Job job_;
};

TEST_F(JobArtifactsTest, ListsWhatTheJobProducedThatBertdServes) {
  JobArtifacts artifacts(store_.get());
  auto listed = artifacts.List(job_, false);
  ASSERT_TRUE(listed.ok()) << listed.status();
  // Stage order; the pretrain stage's output and TensorBoard logs; no
  // fan-out parts, no spec-supplied path without content.
  EXPECT_EQ(Names(*listed), (std::vector<std::string>{"corpus", "dataset", "checkpoint-20",
                                                      "tensorboard", "model"}));
  auto with_checkpoints = artifacts.List(job_, true);
  ASSERT_TRUE(with_checkpoints.ok());
  EXPECT_EQ(Names(*with_checkpoints),
            (std::vector<std::string>{"corpus", "dataset", "checkpoint-20", "tensorboard", "model",
                                      "checkpoint-10", "checkpoint-20"}));
}

TEST_F(JobArtifactsTest, FindsOnlyTheJobsOwnServedArtifacts) {
  JobArtifacts artifacts(store_.get());
  auto model = artifacts.Find(job_, "j1/export/model");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->name(), "model");
  EXPECT_TRUE(artifacts.Find(job_, "j1/pretrain/checkpoint-10").ok());
  // Another job's artifact is not found through this one, nor is an id
  // outside any job, a missing one, or a path recorded without content.
  for (const char* id : {"j2/export/model", "inputs/abc", "j1/export/nothing",
                         "j1/tokenizer/tokenizer", "../j2/export/model"}) {
    auto found = artifacts.Find(job_, id);
    EXPECT_EQ(found.status().code(), absl::StatusCode::kNotFound) << id;
  }
}

// PullArtifact over gRPC, against a controller with role tokens.
class PullArtifactTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFileAtomically(temp_.File("tokens"),
                                    "admin-token-0123456789 admin alice\n"
                                    "viewer-token-0123456789 viewer bob\n"
                                    "agent-token-01234567890 agent a1\n")
                    .ok());
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = temp_.File("data");
    options.check_spec_paths = false;
    options.tokens_file = temp_.File("tokens");
    auto c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(c).value();
    target_ = "127.0.0.1:" + std::to_string(controller_->port());
    auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
    agents_ = v1::AgentService::NewStub(channel);
    auto admin = Client("admin-token-0123456789");
    v1::SubmitJobRequest submit;
    submit.set_spec_yaml(R"(name: pull
corpus:
  sources:
    - paths: [data/*.txt]
      format: text
model:
  preset: bert-tiny
)");
    auto submitted = admin->SubmitJob(submit);
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    job_id_ = submitted->job().id();
    // An agent runs the prepare piece and uploads a directory for it.
    grpc::ClientContext c1;
    c1.AddMetadata("authorization", "Bearer agent-token-01234567890");
    v1::RegisterRequest reg;
    reg.mutable_agent()->set_id("a1");
    reg.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse registered;
    ASSERT_TRUE(agents_->Register(&c1, reg, &registered).ok());
    grpc::ClientContext c2;
    c2.AddMetadata("authorization", "Bearer agent-token-01234567890");
    v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id("a1");
    v1::AcquireAssignmentResponse acquired;
    ASSERT_TRUE(agents_->AcquireAssignment(&c2, acquire, &acquired).ok());
    ASSERT_TRUE(acquired.has_assignment());
    const fs::path src = temp_.path() / "src";
    fs::create_directories(src / "sub");
    big_.assign(3 << 20, '\0');
    for (size_t i = 0; i < big_.size(); ++i) big_[i] = static_cast<char>('a' + (i * 7919) % 26);
    ASSERT_TRUE(WriteFileAtomically((src / "a.bin").string(), big_).ok());
    ASSERT_TRUE(WriteFileAtomically((src / "sub" / "b.txt").string(), "second file").ok());
    agent::TransferOptions t;
    t.token = "agent-token-01234567890";
    agent::ArtifactTransfer transfer(std::shared_ptr<v1::AgentService::StubInterface>(
                                         v1::AgentService::NewStub(channel)),
                                     t);
    auto uploaded = transfer.Upload(acquired.assignment().ref(), job_id_ + "/prepare/shard-0/extra",
                                    "extra", v1::PREPARE, src.string());
    ASSERT_TRUE(uploaded.ok()) << uploaded.status();
    artifact_ = *uploaded;
  }

  std::unique_ptr<client::BertClient> Client(const std::string& token) {
    client::ClientOptions options;
    options.address = target_;
    options.token = token;
    auto c = client::BertClient::Create(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(c).value();
  }

  bert::testing::TempDir temp_{"pull_artifact_"};
  std::unique_ptr<Controller> controller_;
  std::string target_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::string job_id_;
  std::string big_;
  v1::Artifact artifact_;
};

TEST_F(PullArtifactTest, ResumesFromTheHeldBytesAndVerifies) {
  auto viewer = Client("viewer-token-0123456789");
  const std::string dest = temp_.File("pulled");
  // An interrupted pull left the first megabyte of a.bin.
  const std::string partial = protocol::PartialPathFor(dest);
  fs::create_directories(partial);
  ASSERT_TRUE(WriteFileAtomically(partial + "/a.bin", big_.substr(0, 1 << 20)).ok());
  int64_t first_seen = -1, last_seen = 0;
  protocol::DownloadOptions options;
  options.progress = [&](int64_t have, int64_t total) {
    if (first_seen < 0) first_seen = have;
    last_seen = have;
    EXPECT_EQ(total, artifact_.size_bytes());
  };
  absl::Status pulled = viewer->PullArtifact(job_id_, artifact_, dest, options);
  ASSERT_TRUE(pulled.ok()) << pulled;
  EXPECT_EQ(first_seen, 1 << 20);  // resumed, not restarted
  EXPECT_EQ(last_seen, artifact_.size_bytes());
  EXPECT_TRUE(protocol::VerifyLocalArtifact(dest, artifact_).ok());
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(ReadFile(dest + "/sub/b.txt").value_or(""), "second file");

  // Held bytes that are not the artifact's fail the check and are discarded;
  // the retry fetches it whole.
  const std::string dest2 = temp_.File("pulled2");
  fs::create_directories(protocol::PartialPathFor(dest2));
  ASSERT_TRUE(
      WriteFileAtomically(protocol::PartialPathFor(dest2) + "/a.bin", std::string(1000, 'Z')).ok());
  options.progress = nullptr;
  options.retry_backoff = std::chrono::milliseconds(1);
  pulled = viewer->PullArtifact(job_id_, artifact_, dest2, options);
  ASSERT_TRUE(pulled.ok()) << pulled;
  EXPECT_TRUE(protocol::VerifyLocalArtifact(dest2, artifact_).ok());
}

TEST_F(PullArtifactTest, ListsAndRefusesWhatIsNotTheCallersToPull) {
  auto viewer = Client("viewer-token-0123456789");
  auto listed = viewer->ListJobArtifacts(job_id_, true);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->artifacts_size(), 0);  // the piece has not completed: no outputs yet

  protocol::DownloadOptions options;
  options.max_attempts = 1;
  // The artifact under another job's id: not found through that job.
  auto other = Client("admin-token-0123456789")->SubmitJob([] {
    v1::SubmitJobRequest r;
    r.set_spec_yaml("name: other\ncorpus:\n  sources:\n    - paths: [x.txt]\n      format: text\n");
    return r;
  }());
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(viewer->PullArtifact(other->job().id(), artifact_, temp_.File("x"), options).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(viewer->PullArtifact("no-such-job", artifact_, temp_.File("x"), options).code(),
            absl::StatusCode::kNotFound);
  // Callers who may not view jobs: an agent's token, an unknown token.
  EXPECT_EQ(Client("agent-token-01234567890")->PullArtifact(job_id_, artifact_, temp_.File("x"),
                                                           options).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Client("agent-token-01234567890")->ListJobArtifacts(job_id_, false).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Client("unknown-token-0123456789")->PullArtifact(job_id_, artifact_, temp_.File("x"),
                                                            options).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(fs::exists(temp_.File("x")));
}

}  // namespace
}  // namespace bert::server
