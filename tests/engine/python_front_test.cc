// The engine's Python front (engine/python: bert-worker-py over the bertd_engine
// module) against bert-worker on CPU: the same losses step for step and the
// same final weights on one rank and on two Gloo ranks (the Python front's
// group made by torch.distributed and handed to the engine), the step hooks
// called after each backward and each optimizer step, SIGTERM, and the
// protocol's failures (SPEC_ERROR for "hpu" without Habana's bridge).
// Skips when bert-worker-py was not built (no python3 with torch, or no pybind11).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "engine/checkpoint.h"
#include "tests/engine/test_corpus.h"

namespace bert::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct WorkerRun {
  int status = -1;
  std::map<int64_t, double> losses;       // step -> train/loss
  std::map<int64_t, double> eval_losses;  // step -> eval/loss
  std::vector<int64_t> checkpoints;       // steps reported
  json result;
  std::string text;  // all of stdout
};

WorkerRun Parse(int status, const std::string& out) {
  WorkerRun run;
  run.status = status;
  run.text = out;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      ADD_FAILURE() << "not a JSON line on stdout: " << line;
      continue;
    }
    if (j["type"] == "metric" && j["name"] == "train/loss") run.losses[j["step"]] = j["value"];
    if (j["type"] == "metric" && j["name"] == "eval/loss") run.eval_losses[j["step"]] = j["value"];
    if (j["type"] == "checkpoint") run.checkpoints.push_back(j["step"]);
    if (j["type"] == "result") run.result = j;
  }
  return run;
}

// Starts `worker pretrain --config path` with stdout into a pipe; returns the pid.
pid_t Start(const std::string& worker, const std::string& config_path, int* stdout_fd) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  std::fflush(stdout);  // else the child flushes our buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl(worker.c_str(), worker.c_str(), "pretrain", "--config", config_path.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  *stdout_fd = fds[0];
  return pid;
}

// Reads the worker's stdout to its end; `on_line` may signal it. Returns its runs.
WorkerRun Finish(pid_t pid, int fd, const std::function<void(const std::string&)>& on_line = {}) {
  FILE* in = ::fdopen(fd, "r");
  std::string all;
  char line[8192];
  while (std::fgets(line, sizeof line, in) != nullptr) {
    all += line;
    if (on_line) on_line(line);
  }
  std::fclose(in);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return Parse(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), all);
}

std::map<std::string, torch::Tensor> Weights(const std::string& checkpoint) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, t] : ReadCheckpoint(checkpoint).model) out[name] = t;
  return out;
}

void ExpectSameWeights(const std::string& a_dir, const std::string& b_dir) {
  const auto a = Weights(a_dir), b = Weights(b_dir);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name << " max diff " << (t - b.at(name)).abs().max().item<double>();
  }
}

void ExpectSameLosses(const WorkerRun& native, const WorkerRun& python, size_t steps) {
  ASSERT_EQ(native.losses.size(), steps) << native.text;
  ASSERT_EQ(python.losses.size(), steps) << python.text;
  for (const auto& [step, loss] : native.losses) {
    EXPECT_DOUBLE_EQ(python.losses.at(step), loss) << "train/loss at step " << step;
  }
  EXPECT_EQ(python.eval_losses, native.eval_losses);
  EXPECT_EQ(python.checkpoints, native.checkpoints);
}

class PythonFrontTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(testing::MakeTempDir("python-front"));
    const auto lines = testing::LoadEnglishLines(600);
    ASSERT_FALSE(lines.empty());
    const testing::WordVocab vocab = testing::BuildWordVocab(lines, 400);
    testing::WritePackedDataset(*root_ + "/dataset", lines, vocab, 32, 8);
  }
  static void TearDownTestSuite() { fs::remove_all(*root_); }

  void SetUp() override {
    python_worker_ = testing::BinaryPath("bert-worker-py");
    if (::access(python_worker_.c_str(), X_OK) != 0) {
      GTEST_SKIP() << python_worker_
                   << " was not built: engine/python needs a python3 that imports torch, pybind11's headers "
                      "(Debian: python3-torch, pybind11-dev) and that PyTorch's libtorch in this build; "
                      "cmake's configure output says which was missing";
    }
    native_worker_ = testing::BinaryPath("bert-worker");
  }

  // A bert-tiny-sized run on the test dataset, with dropout (so that the
  // generators' streams must match too) and an evaluation and checkpoint midway.
  json Config(const std::string& output_dir, int64_t max_steps) {
    return {{"dataset_dir", *root_ + "/dataset"},
            {"output_dir", output_dir},
            {"model",
             {{"hidden_size", 64},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 2},
              {"intermediate_size", 256},
              {"max_position_embeddings", 64}}},
            {"training",
             {{"max_steps", max_steps},
              {"per_device_batch_size", 4},
              {"learning_rate", 1e-3},
              {"warmup_steps", 2},
              {"weight_decay", 0.01},
              {"save_steps", 3},
              {"logging_steps", 1},
              {"eval_steps", 3},
              {"eval_max_blocks", 8},
              {"seed", 5},
              {"peak_flops", 1e11}}},
            {"device", "cpu"},
            {"threads", 1},
            {"distributed", {{"rank", 0}, {"world_size", 1}}}};
  }

  static std::string WriteConfig(const json& config, const std::string& name) {
    const std::string dir = config["output_dir"];
    fs::create_directories(dir);
    const std::string path = dir + "/" + name;
    std::ofstream(path) << config.dump(2);
    return path;
  }

  WorkerRun Run(const std::string& worker, const json& config) {
    int fd = -1;
    const pid_t pid = Start(worker, WriteConfig(config, "config.json"), &fd);
    return Finish(pid, fd);
  }

  // Both ranks of a two-rank Gloo world through `worker`; returns rank 0's run.
  WorkerRun RunTwoRanks(const std::string& worker, json config) {
    config["distributed"] = {{"backend", "gloo"},
                             {"world_size", 2},
                             {"master_addr", "127.0.0.1"},
                             {"master_port", testing::FreeLoopbackPort()}};
    pid_t pids[2];
    int fds[2];
    for (int rank = 0; rank < 2; ++rank) {
      config["distributed"]["rank"] = rank;
      config["distributed"]["local_rank"] = rank;
      pids[rank] = Start(worker, WriteConfig(config, "config-" + std::to_string(rank) + ".json"), &fds[rank]);
    }
    WorkerRun rank1;
    std::thread drain([&] { rank1 = Finish(pids[1], fds[1]); });  // both pipes drain at once
    WorkerRun rank0 = Finish(pids[0], fds[0]);
    drain.join();
    EXPECT_EQ(rank1.status, 0) << rank1.text;
    EXPECT_TRUE(rank1.losses.empty()) << "only rank 0 reports metrics";
    return rank0;
  }

  // The interpreter bert-worker-py starts with (its #! line).
  std::string Python() const {
    std::ifstream in(python_worker_);
    std::string line;
    std::getline(in, line);
    return line.rfind("#!", 0) == 0 ? line.substr(2) : "python3";
  }

  static std::string* root_;
  std::string python_worker_, native_worker_;
};
std::string* PythonFrontTest::root_ = nullptr;

TEST_F(PythonFrontTest, OneRankGivesBertWorkersLossesStepForStep) {
  const WorkerRun native = Run(native_worker_, Config(*root_ + "/native-1", 6));
  const WorkerRun python = Run(python_worker_, Config(*root_ + "/python-1", 6));
  ASSERT_EQ(native.status, 0) << native.text;
  ASSERT_EQ(python.status, 0) << python.text;
  EXPECT_TRUE(python.result["ok"].get<bool>());
  ExpectSameLosses(native, python, 6);
  ExpectSameWeights(*root_ + "/native-1/checkpoints/checkpoint-6", *root_ + "/python-1/checkpoints/checkpoint-6");
}

TEST_F(PythonFrontTest, TwoGlooRanksFromTorchDistributedGiveBertWorkersLosses) {
  const WorkerRun native = RunTwoRanks(native_worker_, Config(*root_ + "/native-2", 6));
  const WorkerRun python = RunTwoRanks(python_worker_, Config(*root_ + "/python-2", 6));
  ASSERT_EQ(native.status, 0) << native.text;
  ASSERT_EQ(python.status, 0) << python.text;
  ExpectSameLosses(native, python, 6);
  ExpectSameWeights(*root_ + "/native-2/checkpoints/checkpoint-6", *root_ + "/python-2/checkpoints/checkpoint-6");
}

TEST_F(PythonFrontTest, StepHooksRunAfterEachBackwardAndEachOptimizerStep) {
  json config = Config(*root_ + "/hooks", 3);
  config["training"]["gradient_accumulation_steps"] = 2;
  const std::string path = WriteConfig(config, "config.json"), summary_path = *root_ + "/hooks/summary.json";
  const std::string script = std::string(std::getenv("BERT_SOURCE_DIR")) + "/tests/engine/python_front_hooks.py";
  const std::string bin_dir = fs::path(python_worker_).parent_path();
  std::string out;
  const int status = testing::RunProcess({Python(), script, bin_dir, path, summary_path, "count"}, &out);
  ASSERT_EQ(status, 0) << out;
  const json summary = json::parse(std::ifstream(summary_path));
  EXPECT_EQ(summary["status"], 0);
  // Two micro-batches, then the step, three times.
  EXPECT_EQ(summary["calls"], "BBOBBOBBO");
  EXPECT_EQ(summary["settings"]["device"], "cpu");
  EXPECT_EQ(summary["settings"]["world_size"], 1);
  EXPECT_EQ(summary["settings"]["backend"], "gloo");
  EXPECT_EQ(Parse(status, out).losses.size(), 3u);

  // A hook that raises fails the run with its message, as INTERNAL.
  json failing = Config(*root_ + "/hooks-raise", 3);
  const std::string failing_path = WriteConfig(failing, "config.json");
  const int failed = testing::RunProcess({Python(), script, bin_dir, failing_path, summary_path, "raise"}, &out);
  ASSERT_EQ(failed, 0) << out;  // the script itself ends normally
  const WorkerRun run = Parse(json::parse(std::ifstream(summary_path))["status"], out);
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.result["failure_cause"], "INTERNAL");
  EXPECT_NE(run.result["message"].get<std::string>().find("after_optimizer_step: RuntimeError: a hook that fails"),
            std::string::npos)
      << run.result.dump();
}

TEST_F(PythonFrontTest, SigtermStopsAtAStepBoundaryAsBertWorkerDoes) {
  json config = Config(*root_ + "/cancelled", 1000000);
  config["training"]["save_steps"] = 0;
  config["training"]["eval_steps"] = 0;
  int fd = -1;
  const pid_t pid = Start(python_worker_, WriteConfig(config, "config.json"), &fd);
  bool signalled = false;
  const WorkerRun run = Finish(pid, fd, [&](const std::string& line) {
    if (!signalled && line.find("\"progress\"") != std::string::npos) {
      ::kill(pid, SIGTERM);
      signalled = true;
    }
  });
  ASSERT_TRUE(signalled) << run.text;
  EXPECT_EQ(run.status, 143) << run.text;
  EXPECT_EQ(run.result["failure_cause"], "CANCELLED_BY_USER");
  EXPECT_TRUE(ListCheckpoints(*root_ + "/cancelled/checkpoints").empty());
}

TEST_F(PythonFrontTest, FailuresAreBertWorkersResultLines) {
  // An unknown key: the same strict schema, the same message.
  json misspelt = Config(*root_ + "/misspelt", 2);
  misspelt["training"]["learning_rat"] = 1e-3;
  const WorkerRun native = Run(native_worker_, misspelt);
  const WorkerRun python = Run(python_worker_, misspelt);
  EXPECT_EQ(python.status, 1);
  EXPECT_EQ(python.result, native.result);
  EXPECT_EQ(python.result["failure_cause"], "SPEC_ERROR");

  // "hpu" without Intel Gaudi's bridge: SPEC_ERROR naming it, before any work.
  json hpu = Config(*root_ + "/hpu", 2);
  hpu["device"] = "hpu";
  const WorkerRun no_bridge = Run(python_worker_, hpu);
  EXPECT_EQ(no_bridge.status, 1) << no_bridge.text;
  EXPECT_EQ(no_bridge.result["failure_cause"], "SPEC_ERROR");
  EXPECT_NE(no_bridge.result["message"].get<std::string>().find("habana_frameworks"), std::string::npos)
      << no_bridge.result.dump();

  // A backend that cannot run on the device.
  json nccl_on_cpu = Config(*root_ + "/nccl", 2);
  nccl_on_cpu["distributed"] = {{"backend", "nccl"}, {"rank", 0}, {"world_size", 2}};
  const WorkerRun wrong = Run(python_worker_, nccl_on_cpu);
  EXPECT_EQ(wrong.result["failure_cause"], "SPEC_ERROR") << wrong.text;
}

}  // namespace
}  // namespace bert::engine
