// `bert-agent run-stage` as a user runs it: the CPU stages on a committed
// excerpt of the Brown corpus, fanned out or not, and a corrupted input.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"

namespace bert::agent {
namespace {
namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* v = getenv(name);
  return v ? v : "";
}

class RunStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = Env("BERT_BIN_DIR") + "/bert-agent";
    if (access(agent_.c_str(), X_OK) != 0) GTEST_SKIP() << "no bert-agent at " << agent_;
    dir_ = fs::temp_directory_path() / ("bert_run_stage_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string corpus = Env("BERT_SOURCE_DIR") + "/tests/e2e/testdata/brown-1200.txt";
    std::ofstream(dir_ / "job.yaml")
        << "name: t\ncorpus:\n  sources:\n    - paths: [\"" << corpus
        << "\"]\n      format: text\ntokenizer:\n  vocab_size: 600\n"
           "preprocess:\n  max_seq_length: 32\nmodel:\n  preset: bert-tiny\n"
           "training:\n  max_steps: 4\n  per_device_batch_size: 4\n  save_steps: 4\n"
           "  logging_steps: 2\n  eval_steps: 0\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs bert-agent run-stage; returns the exit code, output in *out.
  int Run(const std::string& args, const std::string& work, std::string* out = nullptr) {
    const std::string log = (dir_ / "out.txt").string();
    const std::string cmd =
        absl::StrCat(agent_, " run-stage ", args, " --spec ", (dir_ / "job.yaml").string(),
                     " --work-dir ", (dir_ / work).string(), " --threads 1 >", log, " 2>&1");
    const int status = system(cmd.c_str());
    if (out) *out = ReadFile(log).value_or("");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // "name -> sha256" from run-stage's output lines.
  static std::string Sha(const std::string& out, const std::string& name) {
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      std::vector<std::string> f = absl::StrSplit(line, '\t');
      if (f.size() == 4 && f[0] == name) return f[3];
    }
    return "";
  }

  std::string agent_;
  fs::path dir_;
};

TEST_F(RunStageTest, FanOutAndJoinGiveTheSameArtifactsAsOnePiece) {
  std::string out, corpus1, dataset1;
  ASSERT_EQ(Run("prepare", "one", &out), 0) << out;
  corpus1 = Sha(out, "corpus");
  ASSERT_EQ(Run("tokenizer", "one", &out), 0) << out;
  ASSERT_EQ(Run("preprocess", "one", &out), 0) << out;
  dataset1 = Sha(out, "dataset");
  ASSERT_FALSE(dataset1.empty()) << out;

  for (const char* a : {"prepare --shard 0 --shards 2", "prepare --shard 1 --shards 2"}) {
    ASSERT_EQ(Run(a, "two", &out), 0) << out;
  }
  ASSERT_EQ(Run("prepare --shard 2 --shards 2", "two", &out), 0) << out;
  EXPECT_EQ(Sha(out, "corpus"), corpus1);
  ASSERT_EQ(Run("tokenizer", "two", &out), 0) << out;
  for (const char* a : {"preprocess --shard 1 --shards 2", "preprocess --shard 0 --shards 2",
                        "preprocess --shard 2 --shards 2"}) {
    ASSERT_EQ(Run(a, "two", &out), 0) << a << ": " << out;
  }
  EXPECT_EQ(Sha(out, "dataset"), dataset1);
  EXPECT_TRUE(fs::exists(dir_ / "two/local/preprocess/shard-2/dataset/manifest.json"));
}

TEST_F(RunStageTest, CorruptInputIsDetectedAndNeverUsed) {
  std::string out;
  ASSERT_EQ(Run("prepare", "w", &out), 0) << out;
  // Flip one byte of the prepared corpus after it was recorded.
  const fs::path shard = dir_ / "w/local/prepare/shard-0/corpus/corpus-00000.txt";
  ASSERT_TRUE(fs::exists(shard)) << out;
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('#');
  }
  EXPECT_EQ(Run("tokenizer", "w", &out), 1);
  EXPECT_TRUE(absl::StrContains(out, "ARTIFACT_CORRUPT")) << out;
  EXPECT_TRUE(absl::StrContains(out, "local/prepare/corpus")) << out;
  EXPECT_FALSE(fs::exists(dir_ / "w/local/tokenizer/shard-0/tokenizer"));
}

// Two ranks on one host (as on a host with two devices): one bert-worker per
// rank, each with its own rank and device index, meeting over Gloo; the
// checkpoint they write is a 2-rank one.
TEST_F(RunStageTest, PretrainRunsOneWorkerPerLocalRank) {
  if (access((Env("BERT_BIN_DIR") + "/bert-worker").c_str(), X_OK) != 0) {
    GTEST_SKIP() << "no bert-worker (built without libtorch)";
  }
  std::string out;
  for (const char* stage : {"prepare", "tokenizer", "preprocess"}) {
    ASSERT_EQ(Run(stage, "w", &out), 0) << stage << ": " << out;
  }
  ASSERT_EQ(Run(absl::StrCat("pretrain --local-ranks 2 --worker ", Env("BERT_BIN_DIR"),
                             "/bert-worker"),
                "w", &out),
            0)
      << out;
  const fs::path stage_dir = dir_ / "w/local/pretrain/shard-0";
  for (int rank : {0, 1}) {
    auto config = ReadFile((stage_dir / absl::StrCat("pretrain-config.rank", rank, ".json")).string());
    ASSERT_TRUE(config.ok()) << out;
    EXPECT_TRUE(absl::StrContains(*config, absl::StrCat("\"rank\": ", rank))) << *config;
    EXPECT_TRUE(absl::StrContains(*config, absl::StrCat("\"local_rank\": ", rank))) << *config;
  }
  auto state = ReadFile((stage_dir / "checkpoints/checkpoint-4/trainer_state.json").string());
  ASSERT_TRUE(state.ok()) << out;
  EXPECT_TRUE(absl::StrContains(*state, "\"world_size\": 2")) << *state;
}

TEST_F(RunStageTest, BadUsageIsExitCodeTwo) {
  std::string out;
  EXPECT_EQ(Run("bogus", "w", &out), 2);
  EXPECT_TRUE(absl::StrContains(out, "unknown stage 'bogus'")) << out;
  EXPECT_EQ(Run("prepare --shard 3 --shards 2", "w", &out), 2);
}

}  // namespace
}  // namespace bert::agent
