// The lifecycle verbs as a user runs them: a real `bertd --local-agent` and
// `bertctl`. A job is paused in pre-training (PAUSED, no assignment held),
// resumed, and succeeds with its step sequence continuing from the pause's
// checkpoint (every step once: nothing replayed, nothing skipped). A second
// job is cancelled in pre-training and retried: its data stages are kept and
// pre-training resumes from its newest checkpoint. Both are deleted: GetJob
// and ListJobs know nothing of them, their files under the artifact root are
// gone, and so are their keys in the store. (An interrupted delete finished by
// the collector: tests/server/lifecycle_rpc_test.cc.) About a minute on 2 cores.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/keys.h"
#include "storage/store.h"
#include "tests/e2e/local_bertd.h"
#include "tests/testing/temp_dir.h"

namespace bert::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A tiny job on the committed Brown excerpt, a loss at every step.
std::string Spec(const std::string& name, int max_steps, int save_steps) {
  return "name: " + name + R"(
corpus:
  sources: [brown-1200.txt]
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
  max_steps: )" +
         std::to_string(max_steps) + R"(
  per_device_batch_size: 8
  learning_rate: 1.0e-3
  warmup_steps: 1
  save_steps: )" +
         std::to_string(save_steps) + R"(
  logging_steps: 1
  eval_steps: 0
)";
}

// Protobuf JSON writes int64 as a string.
int64_t Int(const json& value) {
  return value.is_string() ? std::stoll(value.get<std::string>()) : value.get<int64_t>();
}

class LifecycleE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = MissingPrograms();
    if (!missing.empty()) GTEST_SKIP() << missing;
    dir_ = temp_.path();
    fs::create_directories(dir_ / "specs");
    fs::copy_file(SourceDir() + "/tests/e2e/testdata/brown-1200.txt",
                  dir_ / "specs" / "brown-1200.txt");
    bertd_ = std::make_unique<LocalBertd>(dir_);
    std::string error;
    ASSERT_TRUE(bertd_->Start({}, &error)) << error;
  }

  void StopBertd() { bertd_->Stop(); }

  using Run = CliRun;
  Run Bertctl(const std::string& args) { return bertd_->Bertctl(args); }

  std::string Submit(const std::string& name, const std::string& yaml) {
    return bertd_->SubmitSpec(dir_ / "specs" / (name + ".yaml"), yaml);
  }

  json Get(const std::string& id) {
    const Run run = Bertctl("get " + id + " -o json");
    if (run.exit_code != 0) return json();
    return json::parse(run.out);
  }

  // Polls `bertctl get` until pred(job) (at most `seconds`).
  json WaitFor(const std::string& id, const std::function<bool(const json&)>& pred, int seconds,
               const std::string& what) {
    json job;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < until) {
      job = Get(id);
      if (!job.is_null() && pred(job)) return job;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "job " << id << ": never " << what << ": " << job.dump(2) << "\nbertd log:\n"
                  << bertd_->Log();
    return job;
  }
  static bool Final(const json& job) {
    const std::string state = job.value("state", "");
    return state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED";
  }
  static const json* Stage(const json& job, const std::string& kind) {
    for (const json& stage : job["stages"]) {
      if (stage.value("kind", "") == kind) return &stage;
    }
    return nullptr;
  }
  static int64_t PretrainDone(const json& job) {
    const json* s = Stage(job, "PRETRAIN");
    if (s == nullptr || s->value("state", "") != "RUNNING" || !s->contains("progress")) return 0;
    return Int((*s)["progress"].value("done", json(0)));
  }

  // The train/loss steps bertd recorded, in order.
  std::vector<int64_t> LossSteps(const std::string& id) {
    const Run run = Bertctl("metrics " + id + " --name train/loss -o json");
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::vector<int64_t> steps;
    if (run.exit_code != 0) return steps;
    const json response = json::parse(run.out);
    for (const json& series : response["series"]) {
      for (const json& point : series["points"]) steps.push_back(Int(point["step"]));
    }
    return steps;
  }
  std::vector<int64_t> CheckpointSteps(const std::string& id) {
    const Run run = Bertctl("checkpoints " + id + " -o json");
    std::vector<int64_t> steps;
    if (run.exit_code != 0) return steps;
    const json response = json::parse(run.out);
    for (const json& c : response["checkpoints"]) steps.push_back(Int(c["step"]));
    return steps;
  }
  std::string Logs(const std::string& id) { return Bertctl("logs " + id).out; }

  bert::testing::TempDir temp_{"lifecycle_e2e_"};
  fs::path dir_;
  std::unique_ptr<LocalBertd> bertd_;
};

TEST_F(LifecycleE2eTest, PauseResumeRetryAndDeleteThroughBertctl) {
  constexpr int kSteps = 80;
  // --- pause and resume ----------------------------------------------------
  const std::string paused_id = Submit("paused", Spec("paused", kSteps, 0));
  ASSERT_FALSE(paused_id.empty());
  WaitFor(
      paused_id, [](const json& j) { return PretrainDone(j) > 0 || Final(j); }, 300,
      "pre-training");
  Run pause = Bertctl("pause " + paused_id + " --reason e2e");
  ASSERT_EQ(pause.exit_code, 0) << pause.err;
  json job = WaitFor(
      paused_id, [](const json& j) { return j.value("state", "") == "PAUSED" || Final(j); }, 120,
      "PAUSED");
  ASSERT_EQ(job.value("state", ""), "PAUSED") << Logs(paused_id);
  EXPECT_EQ(Stage(job, "PRETRAIN")->value("state", ""), "PAUSED");
  // No assignment held: the local agent runs nothing.
  Run agents = Bertctl("agents -o json");
  ASSERT_EQ(agents.exit_code, 0) << agents.err;
  const json agent_list = json::parse(agents.out);
  for (const json& agent : agent_list["agents"]) {
    EXPECT_TRUE(agent.value("assignment_ids", json::array()).empty()) << agents.out;
  }
  Run listed = Bertctl("list");
  EXPECT_NE(listed.out.find("paused"), std::string::npos) << listed.out;
  const std::vector<int64_t> before = LossSteps(paused_id);
  ASSERT_FALSE(before.empty());
  const int64_t pause_step = before.back();
  ASSERT_LT(pause_step, kSteps) << "the run ended before the pause took effect";
  const std::vector<int64_t> saved = CheckpointSteps(paused_id);
  ASSERT_FALSE(saved.empty());
  EXPECT_EQ(saved.back(), pause_step) << "the pause's checkpoint is at the step reached";

  Run resume = Bertctl("resume " + paused_id);
  ASSERT_EQ(resume.exit_code, 0) << resume.err;
  job = WaitFor(paused_id, Final, 300, "finished");
  ASSERT_EQ(job.value("state", ""), "SUCCEEDED") << Logs(paused_id);
  EXPECT_NE(Logs(paused_id).find("resumed from checkpoint-" + std::to_string(pause_step)),
            std::string::npos)
      << Logs(paused_id);
  std::vector<int64_t> expected(kSteps);
  for (int i = 0; i < kSteps; ++i) expected[i] = i + 1;
  EXPECT_EQ(LossSteps(paused_id), expected)
      << "every step once: continued from step " << pause_step;

  // --- retry of a cancelled job --------------------------------------------
  const std::string retried_id = Submit("retried", Spec("retried", kSteps, 10));
  ASSERT_FALSE(retried_id.empty());
  WaitFor(
      retried_id, [&](const json& j) { return !CheckpointSteps(retried_id).empty() || Final(j); },
      300, "checkpointed");
  Run cancel = Bertctl("cancel " + retried_id);
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  job = WaitFor(retried_id, Final, 60, "cancelled");
  ASSERT_EQ(job.value("state", ""), "CANCELLED");
  const int64_t newest = CheckpointSteps(retried_id).back();
  std::map<std::string, std::string> started;
  for (const char* kind : {"PREPARE", "TOKENIZER", "PREPROCESS"}) {
    started[kind] = Stage(job, kind)->value("started_at", "");
  }
  Run retry = Bertctl("retry " + retried_id);
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_NE(retry.out.find("retry 1"), std::string::npos) << retry.out;
  job = WaitFor(retried_id, Final, 300, "finished");
  ASSERT_EQ(job.value("state", ""), "SUCCEEDED") << Logs(retried_id);
  EXPECT_EQ(job.value("user_retries", 0), 1);
  for (const char* kind : {"PREPARE", "TOKENIZER", "PREPROCESS"}) {
    const json* stage = Stage(job, kind);
    EXPECT_EQ(stage->value("state", ""), "SUCCEEDED") << kind;
    EXPECT_EQ(stage->value("started_at", ""), started[kind]) << kind << " ran again";
  }
  const std::string logs = Logs(retried_id);
  EXPECT_NE(logs.find("kept: prepare, tokenizer, preprocess"), std::string::npos) << logs;
  // The worker resumes from the newest checkpoint that verifies: the newest
  // bertd recorded, or a newer one the cancelled attempt finished writing on
  // this (shared) disk just before it stopped, as the multi-host test allows.
  const size_t at = logs.find("resumed from checkpoint-");
  ASSERT_NE(at, std::string::npos) << logs;
  EXPECT_GE(std::stoll(logs.substr(at + std::string("resumed from checkpoint-").size())), newest)
      << logs;

  // --- delete both -----------------------------------------------------------
  const fs::path root = dir_ / "data" / "artifacts";
  ASSERT_TRUE(fs::exists(root / paused_id));
  Run refused = Bertctl("delete " + paused_id);  // stdin is not a terminal
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  for (const std::string& id : {paused_id, retried_id}) {
    Run deleted = Bertctl("delete --yes " + id);
    ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
    EXPECT_NE(deleted.out.find("deleted job " + id), std::string::npos) << deleted.out;
    EXPECT_EQ(Bertctl("get " + id).exit_code, 4) << "NOT_FOUND";
    EXPECT_FALSE(fs::exists(root / id));
    EXPECT_FALSE(fs::exists(root / ".partial" / id));
  }
  Run list = Bertctl("list -o json");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(json::parse(list.out).value("jobs", json::array()).empty()) << list.out;

  StopBertd();
  auto store = storage::Store::Open((dir_ / "data" / "db").string());
  ASSERT_TRUE(store.ok()) << store.status();
  for (const std::string& id : {paused_id, retried_id}) {
    for (const std::string& prefix :
         {storage::keys::Job(id), storage::keys::EventPrefix(id), storage::keys::MetricPrefix(id),
          storage::keys::CheckpointPrefix(id), storage::keys::JobArtifactPrefix(id)}) {
      auto keys = (*store)->KeysWithPrefix(prefix, 5);
      ASSERT_TRUE(keys.ok()) << keys.status();
      EXPECT_TRUE(keys->empty()) << id << ": " << (*keys)[0];
    }
  }
  auto jobs = (*store)->KeysWithPrefix(std::string(storage::keys::kJobPrefix), 5);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
}

}  // namespace
}  // namespace bert::e2e
