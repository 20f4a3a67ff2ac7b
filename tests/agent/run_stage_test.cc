// `bert-agent run-stage` as a user runs it: the CPU stages on a committed
// excerpt of the Brown corpus, fanned out or not, and a corrupted input.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
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

// The engine's Python front (bert-worker-py, docs/gaudi.md) through the agent:
// two local ranks over a Gloo group made by torch.distributed, then the
// export; and "auto" choosing that front for hpu, which fails here (no Intel
// Gaudi bridge) with the front's SPEC_ERROR rather than bert-worker's.
TEST_F(RunStageTest, PythonFrontRunsPretrainAndExport) {
  const std::string python_worker = Env("BERT_BIN_DIR") + "/bert-worker-py";
  if (access(python_worker.c_str(), X_OK) != 0) {
    GTEST_SKIP() << "no bert-worker-py (engine/python was not built: see cmake's configure output)";
  }
  std::string out;
  for (const char* stage : {"prepare", "tokenizer", "preprocess"}) {
    ASSERT_EQ(Run(stage, "w", &out), 0) << stage << ": " << out;
  }
  const std::string front = absl::StrCat(" --worker-front python --python-worker ", python_worker);
  ASSERT_EQ(Run("pretrain --local-ranks 2" + front, "w", &out), 0) << out;
  const fs::path checkpoint = dir_ / "w/local/pretrain/shard-0/checkpoints/checkpoint-4";
  auto state = ReadFile((checkpoint / "trainer_state.json").string());
  ASSERT_TRUE(state.ok()) << out;
  EXPECT_TRUE(absl::StrContains(*state, "\"world_size\": 2")) << *state;
  ASSERT_EQ(Run("export" + front, "w", &out), 0) << out;
  EXPECT_TRUE(fs::exists(dir_ / "w/local/export/shard-0/model/model.safetensors")) << out;

  // auto + hpu: the Python front, even with no bert-worker at all.
  const std::string hpu =
      absl::StrCat("pretrain --device hpu --worker /nonexistent --python-worker ", python_worker);
  EXPECT_EQ(Run(hpu, "w", &out), 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "SPEC_ERROR")) << out;
  EXPECT_TRUE(absl::StrContains(out, "habana_frameworks")) << out;
}

TEST_F(RunStageTest, BadUsageIsExitCodeTwo) {
  std::string out;
  EXPECT_EQ(Run("bogus", "w", &out), 2);
  EXPECT_TRUE(absl::StrContains(out, "unknown stage 'bogus'")) << out;
  EXPECT_EQ(Run("prepare --shard 3 --shards 2", "w", &out), 2);
}

// The spec decides what the agent reads only within the operator's roots:
// each refusal is a DATA_ERROR naming the path and the rule, and the agent
// process returns (exit code 1) instead of blocking or dying.
class DataRootTest : public RunStageTest {
 protected:
  void WriteSpec(const std::string& paths) {
    std::ofstream(dir_ / "job.yaml", std::ios::trunc)
        << "name: t\ncorpus:\n  sources:\n    - paths: [" << paths
        << "]\n      format: text\ntokenizer:\n  vocab_size: 600\n";
  }
  // Runs prepare with --data-root <dir_>/root.
  int Prepare(std::string* out) {
    fs::create_directories(dir_ / "root");
    return Run(absl::StrCat("prepare --data-root ", (dir_ / "root").string()), "w", out);
  }
  static void ExpectRefused(int code, const std::string& out, const std::string& path,
                            const std::string& rule) {
    EXPECT_EQ(code, 1) << out;
    EXPECT_TRUE(absl::StrContains(out, "DATA_ERROR")) << out;
    EXPECT_TRUE(absl::StrContains(out, path)) << out;
    EXPECT_TRUE(absl::StrContains(out, rule)) << out;
  }
};

TEST_F(DataRootTest, DevZeroIsRefused) {
  std::string out;
  WriteSpec("\"/dev/zero\"");
  ExpectRefused(Prepare(&out), out, "/dev/zero", "not a regular file");
}

TEST_F(DataRootTest, AFifoIsRefusedWithoutBlocking) {
  std::string out;
  fs::create_directories(dir_ / "root");
  const std::string fifo = (dir_ / "root" / "corpus.txt").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  WriteSpec("\"" + fifo + "\"");
  ExpectRefused(Prepare(&out), out, fifo, "not a regular file");
}

TEST_F(DataRootTest, FilesOutsideTheRootAreRefused) {
  std::string out;
  const std::string corpus = Env("BERT_SOURCE_DIR") + "/tests/e2e/testdata/brown-1200.txt";
  WriteSpec("\"" + corpus + "\"");
  ExpectRefused(Prepare(&out), out, corpus, "outside this agent's data roots");

  fs::create_directories(dir_ / "root");
  fs::create_symlink(corpus, dir_ / "root" / "link.txt");
  WriteSpec("\"" + (dir_ / "root" / "link.txt").string() + "\"");
  ExpectRefused(Prepare(&out), out, "link.txt", "outside this agent's data roots");

  // The same file copied under the root is read.
  fs::remove(dir_ / "root" / "link.txt");
  fs::copy_file(corpus, dir_ / "root" / "brown.txt");
  WriteSpec("\"" + (dir_ / "root" / "brown.txt").string() + "\"");
  EXPECT_EQ(Prepare(&out), 0) << out;
}

TEST_F(DataRootTest, AGzipBombWithoutNewlinesIsRefused) {
  std::string out;
  fs::create_directories(dir_ / "root");
  const std::string bomb = (dir_ / "root" / "bomb.txt.gz").string();
  ASSERT_EQ(system(("head -c 64M /dev/zero | gzip -1 > " + bomb).c_str()), 0);
  ASSERT_LT(fs::file_size(bomb), 1u << 20);
  WriteSpec("\"" + bomb + "\"");
  ExpectRefused(Prepare(&out), out, bomb, "is longer than 16777216 bytes");
}

// output.dir and a full disk, through bert-worker: a tiny model trained for
// 4 steps, exported three ways.
class ExportOutputTest : public RunStageTest {
 protected:
  void SetUp() override {
    RunStageTest::SetUp();
    if (IsSkipped()) return;
    if (access((Env("BERT_BIN_DIR") + "/bert-worker").c_str(), X_OK) != 0) {
      GTEST_SKIP() << "no bert-worker (built without libtorch)";
    }
    worker_ = " --worker " + Env("BERT_BIN_DIR") + "/bert-worker";
  }
  void SetOutputDir(const fs::path& out) {
    std::string yaml = ReadFile((dir_ / "job.yaml").string()).value_or("");
    const size_t at = yaml.find("output:");
    if (at != std::string::npos) yaml.resize(at);
    std::ofstream(dir_ / "job.yaml", std::ios::trunc) << yaml << "output:\n  dir: " << out.string()
                                                       << "\n";
  }
  std::string worker_;
};

TEST_F(ExportOutputTest, OutputDirHoldingOtherFilesIsRefusedUntouchedAndReRunsReplaceTheirOwn) {
  std::string out;
  for (const char* stage : {"prepare", "tokenizer", "preprocess", "pretrain"}) {
    ASSERT_EQ(Run(stage + worker_, "w", &out), 0) << stage << ": " << out;
  }
  const fs::path precious = dir_ / "precious";
  fs::create_directories(precious / "sub");
  std::ofstream(precious / "CURRENT") << "rocksdb";
  std::ofstream(precious / "sub" / "data") << "keep";
  SetOutputDir(precious);
  EXPECT_EQ(Run("export" + worker_, "w", &out), 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "SPEC_ERROR")) << out;
  EXPECT_TRUE(absl::StrContains(out, precious.string())) << out;
  EXPECT_EQ(ReadFile((precious / "CURRENT").string()).value_or(""), "rocksdb");
  EXPECT_EQ(ReadFile((precious / "sub" / "data").string()).value_or(""), "keep");
  EXPECT_FALSE(fs::exists(precious / "config.json"));

  const fs::path fresh = dir_ / "models" / "mine";
  SetOutputDir(fresh);
  ASSERT_EQ(Run("export" + worker_, "w", &out), 0) << out;
  EXPECT_TRUE(fs::exists(fresh / "model.safetensors")) << out;
  EXPECT_EQ(ReadFile((fresh / ".bertd-export").string()).value_or(""), "local\n");
  std::ofstream(fresh / "stale-from-before") << "x";  // only a re-run's own files survive
  ASSERT_EQ(Run("export" + worker_, "w", &out), 0) << out;
  EXPECT_TRUE(fs::exists(fresh / "model.safetensors"));
  EXPECT_FALSE(fs::exists(fresh / "stale-from-before"));
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "models")) ++entries, (void)e;
  EXPECT_EQ(entries, 1u) << "a temporary or old export was left beside the new one";
}

// A checkpoint that meets a full disk (a real 1 MiB tmpfs under the pretrain
// stage's directory) fails the stage saying so, and leaves no checkpoint
// directory, complete-looking or temporary, for a resume to take.
TEST_F(ExportOutputTest, DiskFullDuringACheckpointFailsClearlyAndLeavesNoCheckpoint) {
  std::string out;
  for (const char* stage : {"prepare", "tokenizer", "preprocess"}) {
    ASSERT_EQ(Run(stage, "w", &out), 0) << stage << ": " << out;
  }
  const fs::path stage_dir = dir_ / "w/local/pretrain/shard-0";
  fs::create_directories(stage_dir);
  if (mount("tmpfs", stage_dir.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  }
  const int code = Run("pretrain" + worker_, "w", &out);
  std::vector<std::string> left;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(stage_dir / "checkpoints", ec)) {
    left.push_back(e.path().filename().string());
  }
  umount2(stage_dir.c_str(), MNT_DETACH);
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "disk full")) << out;
  EXPECT_TRUE(left.empty()) << "left behind: " << absl::StrJoin(left, ", ") << "\n" << out;

  // The same for the export: the worker's model directory meets a full disk;
  // the stage fails saying so and output.dir receives nothing.
  ASSERT_EQ(Run("pretrain" + worker_, "w", &out), 0) << out;
  const fs::path export_dir = dir_ / "w/local/export/shard-0";
  fs::create_directories(export_dir);
  ASSERT_EQ(mount("tmpfs", export_dir.c_str(), "tmpfs", 0, "size=256k"), 0);
  SetOutputDir(dir_ / "final-model");
  const int export_code = Run("export" + worker_, "w", &out);
  const bool model_left = fs::exists(export_dir / "model");
  umount2(export_dir.c_str(), MNT_DETACH);
  EXPECT_EQ(export_code, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "disk full")) << out;
  EXPECT_FALSE(model_left) << out;
  EXPECT_FALSE(fs::exists(dir_ / "final-model")) << out;
}

}  // namespace
}  // namespace bert::agent
