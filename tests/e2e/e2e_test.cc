// End-to-end and fault tests: bertd, bert-agents and bert-workers as separate
// processes on loopback, running a tiny job on a committed excerpt of the
// Brown corpus (testdata/brown-1200.txt).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "agent/artifact_transfer.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "tests/e2e/cluster.h"

namespace bert::e2e {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// max_steps and save_steps are substituted per test.
constexpr char kSpec[] = R"(name: e2e
corpus:
  sources:
    - paths: ["brown-1200.txt"]
      format: text
tokenizer:
  vocab_size: 1000
preprocess:
  max_seq_length: 64
model:
  preset: bert-tiny
  num_hidden_layers: 2
  hidden_size: 64
  num_attention_heads: 2
  intermediate_size: 256
training:
  max_steps: MAX_STEPS
  per_device_batch_size: 16
  learning_rate: 1.0e-3
  save_steps: SAVE_STEPS
  logging_steps: 5
  eval_steps: 0
resources:
  prep_pool: cpu
  train_pool: train
  max_attempts: 4
)";

std::string Spec(int max_steps, int save_steps) {
  return absl::StrReplaceAll(kSpec, {{"MAX_STEPS", std::to_string(max_steps)},
                                     {"SAVE_STEPS", std::to_string(save_steps)}});
}

std::string TestData() { return Cluster::SourceDir() + "/tests/e2e/testdata"; }

std::vector<v1::CheckpointRecord> Checkpoints(Cluster& c, const std::string& job) {
  v1::ListCheckpointsRequest request;
  request.set_job_id(job);
  v1::ListCheckpointsResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(5));
  c.jobs().ListCheckpoints(&context, request, &response);
  return {response.checkpoints().begin(), response.checkpoints().end()};
}

bool PretrainRunningWithCheckpoint(Cluster& c, const std::string& id) {
  v1::Job job = c.GetJob(id);
  const v1::Stage* s = FindStage(job, v1::PRETRAIN);
  return s != nullptr && s->state() == v1::RUNNING && !Checkpoints(c, id).empty();
}

bool WaitUntil(const std::function<bool()>& pred, seconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

class E2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    const bool controller_only =
        absl::StrContains(::testing::UnitTest::GetInstance()->current_test_info()->name(), "Stale");
    if (std::string missing = controller_only ? Cluster::Missing({"bertd"}) : Cluster::Missing();
        !missing.empty()) {
      GTEST_SKIP() << "end-to-end tests need bertd, bert-agent and bert-worker: " << missing;
    }
    cluster_ =
        std::make_unique<Cluster>(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  std::unique_ptr<Cluster> cluster_;
};

// Two agents as separate processes, neither sharing the controller's disk:
// every artifact moves through the controller.
TEST_F(E2ETest, JobRunsThroughAllStagesOnTwoAgents) {
  Cluster& c = *cluster_;
  c.StartController();
  c.StartAgent("prep", "cpu", /*shared_fs=*/false);
  c.StartAgent("trainer", "train", /*shared_fs=*/false);
  const std::string id = c.Submit(Spec(20, 10), TestData());
  ASSERT_FALSE(absl::StartsWith(id, "error")) << id;
  v1::Job job = c.WaitFor(id, Finished, seconds(120));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.failure_message() << "\n" << c.Logs();

  // Each stage ran on the agent of its pool.
  std::map<v1::StageKind, std::set<std::string>> ran_on;
  for (const v1::Event& e : c.Events(id)) {
    if (e.has_log() && !e.log().agent_id().empty())
      ran_on[e.log().stage()].insert(e.log().agent_id());
  }
  for (v1::StageKind k : {v1::PREPARE, v1::TOKENIZER, v1::PREPROCESS}) {
    EXPECT_FALSE(ran_on[k].count("trainer")) << v1::StageKind_Name(k);
  }
  for (v1::StageKind k : {v1::PRETRAIN, v1::EXPORT}) {
    EXPECT_FALSE(ran_on[k].count("prep")) << v1::StageKind_Name(k);
  }

  // The exported model comes back whole through DownloadArtifact.
  const v1::Stage* exported = FindStage(job, v1::EXPORT);
  ASSERT_NE(exported, nullptr);
  ASSERT_EQ(exported->outputs_size(), 1);
  const v1::Artifact& model = exported->outputs(0);
  EXPECT_TRUE(model.is_directory());
  auto channel = grpc::CreateChannel(
      "127.0.0.1:" + std::string(absl::StripAsciiWhitespace(*ReadFile(c.dir() + "/bertd.port"))),
      grpc::InsecureChannelCredentials());
  agent::ArtifactTransfer transfer(v1::AgentService::NewStub(channel), {});
  const std::string dest = c.dir() + "/fetched-model";
  ASSERT_TRUE(transfer.Download(model, dest).ok());
  EXPECT_TRUE(fs::exists(dest + "/config.json"));
  EXPECT_TRUE(fs::exists(dest + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(dest + "/vocab.txt"));
  EXPECT_EQ(Checkpoints(c, id).back().step(), 20);
}

// save_steps 0 keeps only the final checkpoint, and the export runs from it.
// A second job then names the first one's tokenizer (tokenizer.from, a
// tokenizer.json) and packed dataset (preprocess.from_dataset): the controller
// records those paths without size or hash, the agents read them in place,
// and the job runs through pre-training and export.
TEST_F(E2ETest, SaveStepsZeroAndSpecSuppliedTokenizerAndDatasetRunToTheEnd) {
  Cluster& c = *cluster_;
  c.StartController();
  c.StartAgent("prep", "cpu", /*shared_fs=*/false);
  c.StartAgent("trainer", "train", /*shared_fs=*/false);
  const std::string first = c.Submit(Spec(6, 0), TestData());
  ASSERT_FALSE(absl::StartsWith(first, "error")) << first;
  v1::Job job = c.WaitFor(first, Finished, seconds(120));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.failure_message() << "\n" << c.Logs();
  const std::vector<v1::CheckpointRecord> saved = Checkpoints(c, first);
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0].step(), 6);

  // The first job's tokenizer and dataset, fetched to where a user keeps them.
  auto channel = grpc::CreateChannel(
      "127.0.0.1:" + std::string(absl::StripAsciiWhitespace(*ReadFile(c.dir() + "/bertd.port"))),
      grpc::InsecureChannelCredentials());
  agent::ArtifactTransfer transfer(v1::AgentService::NewStub(channel), {});
  const auto fetch = [&](v1::StageKind kind, const std::string& dest) {
    const v1::Stage* stage = FindStage(job, kind);
    if (stage == nullptr || stage->outputs_size() == 0) return false;
    return transfer.Download(stage->outputs(0), dest).ok();
  };
  const std::string supplied = c.dir() + "/supplied";
  ASSERT_TRUE(fetch(v1::TOKENIZER, supplied + "/tokenizer"));
  ASSERT_TRUE(fetch(v1::PREPROCESS, supplied + "/dataset"));
  ASSERT_TRUE(fs::exists(supplied + "/tokenizer/tokenizer.json"));

  // tokenizer.from names either file of a tokenizer directory.
  for (const std::string file : {"tokenizer.json", "vocab.txt"}) {
    std::string spec = Spec(4, 2);
    spec = absl::StrReplaceAll(
        spec, {{"corpus:\n  sources:\n    - paths: [\"brown-1200.txt\"]\n      format: text\n", ""},
               {"  vocab_size: 1000\n", "  from: supplied/tokenizer/" + file + "\n"},
               {"  max_seq_length: 64\n", "  from_dataset: supplied/dataset\n"}});
    const std::string second = c.Submit(spec, c.dir());
    ASSERT_FALSE(absl::StartsWith(second, "error")) << second << "\n" << spec;
    job = c.WaitFor(second, Finished, seconds(120));
    ASSERT_EQ(job.state(), v1::SUCCEEDED) << file << ": " << job.failure_message() << "\n" << c.Logs();
    for (v1::StageKind k : {v1::TOKENIZER, v1::PREPROCESS}) {
      EXPECT_EQ(FindStage(job, k)->state(), v1::SKIPPED) << v1::StageKind_Name(k);
    }
    const v1::Stage* exported = FindStage(job, v1::EXPORT);
    ASSERT_NE(exported, nullptr);
    ASSERT_EQ(exported->outputs_size(), 1);
    const std::string model = c.dir() + "/model-from-" + file;
    ASSERT_TRUE(transfer.Download(exported->outputs(0), model).ok());
    EXPECT_TRUE(fs::exists(model + "/model.safetensors"));
    EXPECT_TRUE(fs::exists(model + "/vocab.txt"));
  }
}

// SIGKILL of the training agent mid-run: its lease expires, a new agent takes
// the stage and resumes from the last checkpoint.
TEST_F(E2ETest, AgentKilledDuringPretrainIsReplacedAndResumes) {
  Cluster& c = *cluster_;
  c.StartController();
  c.StartAgent("prep", "cpu", /*shared_fs=*/true);
  c.StartAgent("trainer-1", "train", /*shared_fs=*/true);
  const std::string id = c.Submit(Spec(200, 20), TestData());
  ASSERT_FALSE(absl::StartsWith(id, "error")) << id;
  ASSERT_TRUE(WaitUntil([&] { return PretrainRunningWithCheckpoint(c, id); }, seconds(90)))
      << c.Logs();
  c.KillAgent("trainer-1");
  c.StartAgent("trainer-2", "train", /*shared_fs=*/true);
  v1::Job job = c.WaitFor(id, Finished, seconds(120));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.failure_message() << "\n" << c.Logs();
  const v1::Stage* pretrain = FindStage(job, v1::PRETRAIN);
  ASSERT_NE(pretrain, nullptr);
  EXPECT_GE(pretrain->attempt(), 2);
  bool resumed = false;
  for (const v1::Event& e : c.Events(id)) {
    if (e.has_log() && e.log().stage() == v1::PRETRAIN &&
        absl::StrContains(absl::AsciiStrToLower(e.log().message()), "resum")) {
      resumed = true;
    }
  }
  EXPECT_TRUE(resumed) << "no log line says the second attempt resumed\n" << c.Logs();
}

// SIGKILL of bertd mid-job: restarted on the same data dir and port, the job
// finishes in its first attempt (the agent reconnects within the restart
// grace), nothing recorded before the kill is gone afterwards, and every
// checkpoint record and loss reported while bertd was down arrives.
TEST_F(E2ETest, ControllerKilledMidJobLosesNothing) {
  Cluster& c = *cluster_;
  c.StartController();
  c.StartAgent("prep", "cpu", /*shared_fs=*/true);
  c.StartAgent("trainer", "train", /*shared_fs=*/true);
  const int kSteps = 120, kSave = 20;
  const std::string id = c.Submit(Spec(kSteps, kSave), TestData());
  ASSERT_FALSE(absl::StartsWith(id, "error")) << id;
  ASSERT_TRUE(WaitUntil([&] { return PretrainRunningWithCheckpoint(c, id); }, seconds(90)))
      << c.Logs();
  const std::vector<v1::Event> before = c.Events(id);
  c.KillController();
  std::this_thread::sleep_for(milliseconds(1500));  // the agents keep training meanwhile
  c.StartController();
  v1::Job job = c.WaitFor(id, Finished, seconds(120));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.failure_message() << "\n" << c.Logs();

  const std::vector<v1::Event> after = c.Events(id);
  ASSERT_GE(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].seq(), static_cast<int64_t>(i + 1));
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].SerializeAsString(), before[i].SerializeAsString()) << "event " << i + 1;
  }
  std::set<int64_t> steps;
  for (const auto& r : Checkpoints(c, id)) steps.insert(r.step());
  for (int s = kSave; s <= kSteps; s += kSave) EXPECT_TRUE(steps.count(s)) << "checkpoint " << s;
  std::set<int64_t> loss_steps;
  for (const v1::Event& e : after) {
    if (e.has_metric() && e.metric().name() == "train/loss") loss_steps.insert(e.metric().step());
  }
  for (int s = kSave; s <= kSteps; s += kSave) EXPECT_TRUE(loss_steps.count(s)) << "loss at " << s;
}

// A report from an attempt whose lease expired is refused once a newer
// attempt exists. The "agent" here is this test speaking AgentService.
TEST_F(E2ETest, StaleAttemptReportIsRefused) {
  Cluster& c = *cluster_;
  c.StartController();
  auto register_agent = [&](const std::string& agent_id) {
    v1::RegisterRequest request;
    request.mutable_agent()->set_id(agent_id);
    request.mutable_agent()->add_pools("cpu");
    request.mutable_agent()->mutable_resources()->set_cpu_cores(1);
    request.mutable_agent()->mutable_resources()->set_accelerator(v1::CPU);
    request.mutable_agent()->mutable_resources()->set_accelerator_count(1);
    v1::RegisterResponse response;
    grpc::ClientContext context;
    return c.agents().Register(&context, request, &response).ok();
  };
  auto acquire = [&](const std::string& agent_id) {
    {  // a live agent heartbeats
      v1::HeartbeatRequest beat;
      beat.set_agent_id(agent_id);
      v1::HeartbeatResponse response;
      grpc::ClientContext context;
      c.agents().Heartbeat(&context, beat, &response);
    }
    v1::AcquireAssignmentRequest request;
    request.set_agent_id(agent_id);
    request.set_wait_ms(500);
    v1::AcquireAssignmentResponse response;
    grpc::ClientContext context;
    c.agents().AcquireAssignment(&context, request, &response);
    return response.assignment();
  };
  auto report = [&](const v1::AssignmentRef& ref) {
    v1::ReportStageRequest request;
    *request.mutable_ref() = ref;
    request.add_reports()->mutable_log()->set_message("hello");
    v1::ReportStageResponse response;
    grpc::ClientContext context;
    return c.agents().ReportStage(&context, request, &response);
  };
  ASSERT_TRUE(register_agent("ghost-1"));
  const std::string id = c.Submit(Spec(10, 10), TestData());
  ASSERT_FALSE(absl::StartsWith(id, "error")) << id;
  v1::Assignment first;
  ASSERT_TRUE(
      WaitUntil([&] { return !(first = acquire("ghost-1")).ref().job_id().empty(); }, seconds(20)));
  EXPECT_TRUE(report(first.ref()).ok());
  // ghost-1 goes silent; its lease (2 s) runs out and ghost-2 gets a new attempt.
  ASSERT_TRUE(register_agent("ghost-2"));
  v1::Assignment second;
  ASSERT_TRUE(WaitUntil(
      [&] {
        second = acquire("ghost-2");
        return second.ref().job_id() == id && second.ref().stage() == first.ref().stage();
      },
      seconds(30)))
      << c.Logs();
  EXPECT_GT(second.ref().attempt(), first.ref().attempt());
  grpc::Status stale = report(first.ref());
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << stale.error_message();
  v1::CompleteStageRequest complete;
  *complete.mutable_ref() = first.ref();
  complete.set_success(true);
  v1::CompleteStageResponse complete_response;
  grpc::ClientContext context;
  EXPECT_EQ(c.agents().CompleteStage(&context, complete, &complete_response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(report(second.ref()).ok());
}

// A cancelled job's running stage stops within seconds and frees its worker.
TEST_F(E2ETest, CancelStopsTheRunningStageWithinSeconds) {
  Cluster& c = *cluster_;
  c.StartController();
  c.StartAgent("all", "cpu,train", /*shared_fs=*/true);
  const std::string id = c.Submit(Spec(100000, 1000), TestData());
  ASSERT_FALSE(absl::StartsWith(id, "error")) << id;
  ASSERT_TRUE(WaitUntil(
      [&] {
        const v1::Stage* s = FindStage(c.GetJob(id), v1::PRETRAIN);
        return s != nullptr && s->state() == v1::RUNNING && s->progress().done() > 0;
      },
      seconds(90)))
      << c.Logs();
  v1::CancelJobRequest request;
  request.set_job_id(id);
  v1::Job cancelled;
  grpc::ClientContext context;
  ASSERT_TRUE(c.jobs().CancelJob(&context, request, &cancelled).ok());
  const auto start = std::chrono::steady_clock::now();
  // The agent logs "finish <job>/PRETRAIN/... CANCELLED" once its worker is gone.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto log = ReadFile(c.dir() + "/agent-all.log");
        return log.ok() && absl::StrContains(*log, "finish " + id + "/PRETRAIN");
      },
      seconds(15)))
      << c.Logs();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
  EXPECT_EQ(c.GetJob(id).state(), v1::CANCELLED);
}

// A corpus uploaded from the submitting machine (JobService.UploadInput), read
// by a prep agent that shares no disk with the controller and whose data root
// holds nothing of it: the agent fetches the upload for the job into the
// job's work directory and prepares it; the spec's own path exists nowhere.
TEST_F(E2ETest, AnUploadedCorpusIsFetchedAndPreparedByANonSharedAgent) {
  Cluster& c = *cluster_;
  c.StartController();
  const std::string root = c.dir() + "/empty-data-root";
  fs::create_directories(root);
  c.StartAgent("prep", "cpu", /*shared_fs=*/false, {"--data-root", root});
  const std::string marker = "a line that only the uploaded corpus holds";
  const std::string corpus = *ReadFile(TestData() + "/brown-1200.txt") + marker + "\n";
  const std::string sha = Sha256Hex(corpus);

  v1::Artifact uploaded;
  grpc::ClientContext upload_context;
  auto writer = c.jobs().UploadInput(&upload_context, &uploaded);
  v1::ArtifactChunk chunk;
  chunk.mutable_artifact()->set_sha256(sha);
  chunk.mutable_artifact()->set_size_bytes(static_cast<int64_t>(corpus.size()));
  chunk.set_data(corpus);
  chunk.set_chunk_sha256(sha);
  ASSERT_TRUE(writer->Write(chunk));
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();

  v1::SubmitJobRequest request;
  request.set_spec_yaml(absl::StrReplaceAll(
      Spec(10, 0), {{"\"brown-1200.txt\"", "\"/home/someone/laptop/corpus.txt\""}}));
  v1::InputFile* file = request.add_input_files();
  file->set_path("/home/someone/laptop/corpus.txt");
  file->set_sha256(sha);
  file->set_size_bytes(static_cast<int64_t>(corpus.size()));
  v1::SubmitJobResponse submitted;
  grpc::ClientContext submit_context;
  s = c.jobs().SubmitJob(&submit_context, request, &submitted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string id = submitted.job().id();

  v1::Job job = c.WaitFor(id, [](const v1::Job& j) {
    const v1::Stage* prepare = FindStage(j, v1::PREPARE);
    return prepare != nullptr && prepare->state() != v1::QUEUED && prepare->state() != v1::RUNNING;
  }, seconds(60));
  const v1::Stage* prepare = FindStage(job, v1::PREPARE);
  ASSERT_NE(prepare, nullptr);
  ASSERT_EQ(prepare->state(), v1::SUCCEEDED) << job.failure_message() << "\n" << c.Logs();
  // Fetched into the job's own directory on the agent, verified.
  const std::string fetched = c.dir() + "/agent-prep/jobs/" + id + "/inputs/" + sha;
  ASSERT_TRUE(fs::exists(fetched)) << fetched;
  EXPECT_EQ(*ReadFile(fetched), corpus);
  // The prepared corpus holds the uploaded text.
  bool found = false;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(c.dir() + "/agent-prep/jobs/" + id + "/prepare", ec)) {
    if (e.is_regular_file() && absl::StrContains(ReadFile(e.path().string()).value_or(""), marker)) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "the prepared corpus lacks the uploaded text";
  grpc::ClientContext cancel_context;
  v1::CancelJobRequest cancel;
  cancel.set_job_id(id);
  v1::Job cancelled;
  c.jobs().CancelJob(&cancel_context, cancel, &cancelled);
}

}  // namespace
}  // namespace bert::e2e
