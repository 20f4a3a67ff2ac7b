// bert-worker pretrain/export/predict end to end on tiny models: exact resume
// (also past a corrupt checkpoint), two Gloo ranks against one process,
// resuming on a different world size, SIGTERM, bad input, export and predict.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/checkpoint.h"
#include "engine/engine_error.h"
#include "engine/hf_model_loader.h"
#include "engine/warm_start.h"
#include "engine/trainer.h"
#include "engine/safetensors.h"
#include "tests/engine/test_corpus.h"
#include "tokenizer/tokenizer.h"

namespace bert::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct WorkerRun {
  int status = -1;
  std::vector<json> reports;
  std::map<int64_t, double> losses;  // step -> train/loss
  std::string log;                   // every log message
  json result;
};

WorkerRun Parse(int status, const std::string& out) {
  WorkerRun run;
  run.status = status;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      ADD_FAILURE() << "not a JSON line on stdout: " << line;
      continue;
    }
    if (j["type"] == "metric" && j["name"] == "train/loss") run.losses[j["step"]] = j["value"];
    if (j["type"] == "log") run.log += j["message"].get<std::string>() + "\n";
    if (j["type"] == "result") run.result = j;
    run.reports.push_back(j);
  }
  return run;
}

std::string WriteConfig(const std::string& dir, const json& config) {
  const std::string path =
      dir + "/config-" + std::to_string(config["distributed"].value("rank", 0)) + ".json";
  std::ofstream(path) << config.dump(2);
  return path;
}

WorkerRun Worker(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {testing::BinaryPath("bert-worker")};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  const int status = testing::RunProcess(argv, &out);
  return Parse(status, out);
}

class TrainingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(testing::MakeTempDir("training"));
    const auto lines = testing::LoadEnglishLines(600);
    ASSERT_FALSE(lines.empty());
    vocab_ = new testing::WordVocab(testing::BuildWordVocab(lines, 400));
    testing::WritePackedDataset(*root_ + "/dataset", lines, *vocab_, 32, 8);
  }
  static void TearDownTestSuite() { fs::remove_all(*root_); }

  // A bert-tiny-sized run on the test dataset.
  json Config(const std::string& output_dir, int64_t max_steps) {
    return {{"dataset_dir", *root_ + "/dataset"},
            {"output_dir", output_dir},
            {"model",
             {{"hidden_size", 64},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 2},
              {"intermediate_size", 256},
              {"max_position_embeddings", 64},
              {"type_vocab_size", 2}}},
            {"training",
             {{"max_steps", max_steps},
              {"per_device_batch_size", 4},
              {"learning_rate", 1e-3},
              {"warmup_steps", 2},
              {"weight_decay", 0.01},
              {"save_steps", 4},
              {"logging_steps", 1},
              {"eval_steps", 0},
              {"seed", 5},
              {"peak_flops", 1e11}}},
            {"device", "cpu"},
            {"threads", 1},
            {"distributed", {{"rank", 0}, {"world_size", 1}}}};
  }
  WorkerRun Pretrain(const json& config) {
    fs::create_directories(config["output_dir"].get<std::string>());
    return Worker({"pretrain", "--config", WriteConfig(config["output_dir"], config)});
  }

  // Trains 4 steps into root/name, exports with the test vocabulary as the
  // tokenizer, and returns the Hugging Face directory ("" after a failure).
  std::string TrainAndExport(const std::string& name) {
    const std::string train_dir = *root_ + "/" + name, tok_dir = train_dir + "-tokenizer",
                      out_dir = train_dir + "-hf";
    const WorkerRun trained = Pretrain(Config(train_dir, 4));
    EXPECT_EQ(trained.status, 0) << trained.result.dump();
    auto tokenizer = tokenizer::Tokenizer::FromVocab(vocab_->tokens, /*lowercase=*/true);
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    if (trained.status != 0 || !tokenizer.ok() || !tokenizer->Save(tok_dir).ok()) return "";
    const json config = {
        {"checkpoint_dir", train_dir}, {"tokenizer_dir", tok_dir}, {"output_dir", out_dir}};
    std::ofstream(train_dir + "-export.json") << config.dump();
    const WorkerRun run = Worker({"export", "--config", train_dir + "-export.json"});
    EXPECT_EQ(run.status, 0) << run.result.dump();
    return run.status == 0 ? out_dir : "";
  }

  static std::string* root_;
  static testing::WordVocab* vocab_;
};
std::string* TrainingTest::root_ = nullptr;
testing::WordVocab* TrainingTest::vocab_ = nullptr;

std::map<std::string, torch::Tensor> Weights(const std::string& checkpoint) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, t] : ReadCheckpoint(checkpoint).model) out[name] = t;
  return out;
}

TEST_F(TrainingTest, ResumeGivesTheSameLossesAsAnUninterruptedRun) {
  const std::string a = *root_ + "/straight", b = *root_ + "/resumed";
  const WorkerRun straight = Pretrain(Config(a, 8));
  ASSERT_EQ(straight.status, 0) << straight.result.dump();
  ASSERT_EQ(straight.losses.size(), 8u);
  EXPECT_TRUE(straight.result["ok"].get<bool>());

  ASSERT_EQ(Pretrain(Config(b, 8)).status, 0);
  fs::remove_all(b + "/checkpoints/checkpoint-8");  // as if interrupted after step 4's checkpoint
  const WorkerRun resumed = Pretrain(Config(b, 8));
  ASSERT_EQ(resumed.status, 0) << resumed.result.dump();
  EXPECT_NE(resumed.log.find("resumed from checkpoint-4"), std::string::npos) << resumed.log;
  ASSERT_EQ(resumed.losses.size(), 4u);
  for (int64_t step = 5; step <= 8; ++step) {
    EXPECT_DOUBLE_EQ(resumed.losses.at(step), straight.losses.at(step)) << "step " << step;
  }

  // A truncated newest checkpoint is skipped, and the run resumes from the one before.
  const std::string model = b + "/checkpoints/checkpoint-8/model.pt";
  fs::resize_file(model, fs::file_size(model) / 2);
  const WorkerRun past_corrupt = Pretrain(Config(b, 8));
  ASSERT_EQ(past_corrupt.status, 0) << past_corrupt.result.dump();
  EXPECT_NE(past_corrupt.log.find("skipping checkpoint"), std::string::npos) << past_corrupt.log;
  EXPECT_NE(past_corrupt.log.find("resumed from checkpoint-4"), std::string::npos)
      << past_corrupt.log;
  EXPECT_DOUBLE_EQ(past_corrupt.losses.at(8), straight.losses.at(8));
  std::string why;
  EXPECT_TRUE(VerifyCheckpoint(b + "/checkpoints/checkpoint-8", &why)) << why;
  // Checkpoint reports carry the path and the manifest's checksum.
  bool reported = false;
  for (const json& r : straight.reports) {
    if (r["type"] == "checkpoint" && r["step"] == 8) {
      reported = true;
      EXPECT_EQ(r["sha256"].get<std::string>().size(), 64u);
      EXPECT_GT(r["size_bytes"].get<int64_t>(), 0);
    }
  }
  EXPECT_TRUE(reported);
}

TEST_F(TrainingTest, Bf16AutocastTrainsOnCpu) {
  json config = Config(*root_ + "/bf16", 3);
  config["training"]["precision"] = "bf16";
  const WorkerRun run = Pretrain(config);
  ASSERT_EQ(run.status, 0) << run.result.dump() << run.log;
  ASSERT_EQ(run.losses.size(), 3u);
  for (const auto& [step, loss] : run.losses) EXPECT_TRUE(std::isfinite(loss)) << "step " << step;
}

TEST_F(TrainingTest, SaveTotalLimitKeepsTheNewest) {
  const std::string dir = *root_ + "/limited";
  json config = Config(dir, 6);
  config["training"]["save_steps"] = 2;
  config["training"]["save_total_limit"] = 2;
  ASSERT_EQ(Pretrain(config).status, 0);
  const auto kept = ListCheckpoints(dir + "/checkpoints");
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].first, 6);
  EXPECT_EQ(kept[1].first, 4);
}

TEST_F(TrainingTest, SaveStepsZeroSavesOnlyTheFinalCheckpoint) {
  const std::string dir = *root_ + "/final-only";
  json config = Config(dir, 5);
  config["training"]["save_steps"] = 0;
  const WorkerRun run = Pretrain(config);
  ASSERT_EQ(run.status, 0) << run.result.dump() << run.log;
  const auto kept = ListCheckpoints(dir + "/checkpoints");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].first, 5);
  std::string why;
  EXPECT_TRUE(VerifyCheckpoint(dir + "/checkpoints/checkpoint-5", &why)) << why;
  int reported = 0;
  for (const json& r : run.reports) reported += r["type"] == "checkpoint";
  EXPECT_EQ(reported, 1);
}

TEST_F(TrainingTest, TwoGlooRanksMatchOneProcessAndResumeOnOne) {
  const std::string one = *root_ + "/one", two = *root_ + "/two";
  json single = Config(one, 3);
  single["model"]["hidden_dropout_prob"] = 0.0;
  single["model"]["attention_probs_dropout_prob"] = 0.0;
  single["training"]["per_device_batch_size"] = 4;
  single["training"]["save_steps"] = 3;
  ASSERT_EQ(Pretrain(single).status, 0);

  json ranked = single;
  ranked["output_dir"] = two;
  ranked["training"]["per_device_batch_size"] = 2;
  ranked["distributed"] = {{"backend", "gloo"},
                           {"world_size", 2},
                           {"master_addr", "127.0.0.1"},
                           {"master_port", testing::FreeLoopbackPort()}};
  fs::create_directories(two);
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 2; ++rank) {
    ranked["distributed"]["rank"] = rank;
    ranked["distributed"]["local_rank"] = rank;
    const std::string config = WriteConfig(two, ranked);
    std::fflush(stdout);  // else the child flushes our buffered output again
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string log = two + "/rank" + std::to_string(rank) + ".out";
      std::freopen(log.c_str(), "w", stdout);
      const std::string bin = testing::BinaryPath("bert-worker");
      ::execl(bin.c_str(), bin.c_str(), "pretrain", "--config", config.c_str(), nullptr);
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "rank exit status " << status;
  }
  const auto a = Weights(one + "/checkpoints/checkpoint-3"),
             b = Weights(two + "/checkpoints/checkpoint-3");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    EXPECT_TRUE(torch::allclose(t, b.at(name), 1e-4, 1e-6))
        << name << " max diff " << (t - b.at(name)).abs().max().item<double>();
  }

  // The two-rank run goes on as one process of the same global batch: re-split, not replayed.
  json resumed = single;
  resumed["output_dir"] = two;
  resumed["training"]["max_steps"] = 5;
  resumed["training"]["save_steps"] = 5;
  const WorkerRun run = Pretrain(resumed);
  ASSERT_EQ(run.status, 0) << run.result.dump();
  EXPECT_NE(run.log.find("2 -> 1 ranks"), std::string::npos) << run.log;
  EXPECT_EQ(run.losses.size(), 2u);
  std::ifstream state_file(two + "/checkpoints/checkpoint-5/trainer_state.json");
  const json state = json::parse(state_file);
  EXPECT_EQ(state["consumed_samples"], 5 * 4);
}

TEST_F(TrainingTest, SigtermStopsAtAStepBoundaryWithoutACheckpoint) {
  const std::string dir = *root_ + "/cancelled";
  json config = Config(dir, 1000000);
  config["training"]["save_steps"] = 0;
  fs::create_directories(dir);
  const std::string path = WriteConfig(dir, config);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  std::fflush(stdout);  // else the child flushes our buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::close(pipe_fds[0]);
    const std::string bin = testing::BinaryPath("bert-worker");
    ::execl(bin.c_str(), bin.c_str(), "pretrain", "--config", path.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  FILE* out = ::fdopen(pipe_fds[0], "r");
  std::string all;
  char line[4096];
  bool signalled = false;
  while (std::fgets(line, sizeof line, out) != nullptr) {
    all += line;
    if (!signalled && std::string(line).find("\"progress\"") != std::string::npos) {
      ::kill(pid, SIGTERM);
      signalled = true;
    }
  }
  std::fclose(out);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(signalled);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 143);
  const WorkerRun run = Parse(WEXITSTATUS(status), all);
  EXPECT_EQ(run.result["failure_cause"], "CANCELLED_BY_USER");
  EXPECT_TRUE(ListCheckpoints(dir + "/checkpoints").empty());
}

// A pause in the loop itself: asked at step 3 (the observer says so at the
// next step boundary), the run writes checkpoint-3 although save_steps is 4,
// and a new run on the same directory continues with exactly the losses of an
// uninterrupted one.
class PausingObserver final : public TrainingObserver {
 public:
  explicit PausingObserver(int64_t pause_at) : pause_at_(pause_at) {}
  void OnProgress(int64_t step, int64_t) override { step_ = step; }
  void OnMetric(const std::string& name, double value, int64_t step) override {
    if (name == "train/loss") losses[step] = value;
  }
  void OnLog(const std::string&, const std::string& message) override { log += message + "\n"; }
  void OnCheckpoint(const WrittenCheckpoint& c) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkpoints.push_back(c.step);
  }
  bool Cancelled() const override { return false; }
  bool PauseRequested() const override { return pause_at_ > 0 && step_ >= pause_at_; }

  std::map<int64_t, double> losses;
  std::string log;
  std::vector<int64_t> checkpoints;

 private:
  const int64_t pause_at_;
  int64_t step_ = 0;
  std::mutex mu_;
};

// Config()'s run as the loop's options (dropout on: the RNG states must be restored).
PretrainOptions LoopOptions(const std::string& dataset_dir, const std::string& output_dir) {
  PretrainOptions o;
  o.dataset_dir = dataset_dir;
  o.output_dir = output_dir;
  o.model.vocab_size = 0;  // the dataset's
  o.model.hidden_size = 64;
  o.model.num_hidden_layers = 2;
  o.model.num_attention_heads = 2;
  o.model.intermediate_size = 256;
  o.model.max_position_embeddings = 64;
  o.training.max_steps = 8;
  o.training.per_device_batch_size = 4;
  o.training.learning_rate = 1e-3;
  o.training.warmup_steps = 2;
  o.training.weight_decay = 0.01;
  o.training.save_steps = 4;
  o.training.logging_steps = 1;
  o.training.eval_steps = 0;
  o.training.seed = 5;
  o.training.peak_flops = 1e11;
  o.device = "cpu";
  o.threads = 1;
  return o;
}

TEST_F(TrainingTest, APauseCheckpointsTheStepReachedAndTheResumeContinuesExactly) {
  const std::string a = *root_ + "/pause-straight", b = *root_ + "/pause-resumed";
  PausingObserver straight(0);
  fs::create_directories(a);
  const PretrainResult whole = engine::Pretrain(LoopOptions(*root_ + "/dataset", a), straight);
  ASSERT_FALSE(whole.paused);
  ASSERT_EQ(straight.losses.size(), 8u);

  const PretrainOptions options = LoopOptions(*root_ + "/dataset", b);
  fs::create_directories(b);
  PausingObserver first(3);
  const PretrainResult paused = engine::Pretrain(options, first);
  EXPECT_TRUE(paused.paused);
  EXPECT_FALSE(paused.cancelled);
  EXPECT_EQ(paused.steps_done, 3);
  EXPECT_EQ(first.checkpoints, (std::vector<int64_t>{3})) << "save_steps 4: only the pause's checkpoint";
  EXPECT_EQ(first.losses.rbegin()->first, 3);

  PausingObserver second(0);
  const PretrainResult resumed = engine::Pretrain(options, second);
  EXPECT_FALSE(resumed.paused);
  EXPECT_EQ(resumed.steps_done, 8);
  EXPECT_NE(second.log.find("resumed from checkpoint-3"), std::string::npos) << second.log;
  ASSERT_EQ(second.losses.size(), 5u);
  for (int64_t step = 4; step <= 8; ++step) {
    EXPECT_DOUBLE_EQ(second.losses.at(step), straight.losses.at(step)) << "step " << step;
  }

  // Paused again right after a resume, at a step that already has its
  // checkpoint: nothing is rewritten.
  PausingObserver again(8);
  const PretrainResult done = engine::Pretrain(options, again);
  EXPECT_EQ(done.steps_done, 8);
  EXPECT_TRUE(again.checkpoints.empty());
}

// bert-worker's SIGUSR1: a checkpoint at the step reached, exit 138, PAUSED_BY_USER.
TEST_F(TrainingTest, SigusrOnePausesWithACheckpointAtTheStepReached) {
  const std::string dir = *root_ + "/paused";
  json config = Config(dir, 1000000);
  config["training"]["save_steps"] = 0;
  fs::create_directories(dir);
  const std::string path = WriteConfig(dir, config);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::close(pipe_fds[0]);
    const std::string bin = testing::BinaryPath("bert-worker");
    ::execl(bin.c_str(), bin.c_str(), "pretrain", "--config", path.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  FILE* out = ::fdopen(pipe_fds[0], "r");
  std::string all;
  char line[4096];
  bool signalled = false;
  while (std::fgets(line, sizeof line, out) != nullptr) {
    all += line;
    if (!signalled && std::string(line).find("\"progress\"") != std::string::npos) {
      ::kill(pid, SIGUSR1);
      signalled = true;
    }
  }
  std::fclose(out);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(signalled);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 138);
  const WorkerRun run = Parse(WEXITSTATUS(status), all);
  EXPECT_EQ(run.result["failure_cause"], "PAUSED_BY_USER");
  ASSERT_FALSE(run.losses.empty());
  const int64_t reached = run.losses.rbegin()->first;
  const auto checkpoints = ListCheckpoints(dir + "/checkpoints");
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].first, reached);
  bool reported = false;
  for (const json& r : run.reports) reported |= r["type"] == "checkpoint" && r["step"] == reached;
  EXPECT_TRUE(reported) << all;
}

TEST_F(TrainingTest, BadInputFailsWithACauseAndNoCrash) {
  json missing = Config(*root_ + "/bad1", 2);
  missing["dataset_dir"] = *root_ + "/no-such-dataset";
  const WorkerRun a = Pretrain(missing);
  EXPECT_EQ(a.status, 1);
  EXPECT_EQ(a.result["failure_cause"], "DATA_ERROR");
  EXPECT_NE(a.result["message"].get<std::string>().find("no-such-dataset"), std::string::npos);

  json hpu = Config(*root_ + "/bad2", 2);
  hpu["device"] = "hpu";
  const WorkerRun b = Pretrain(hpu);
  EXPECT_EQ(b.status, 1);
  EXPECT_EQ(b.result["failure_cause"], "SPEC_ERROR");
  EXPECT_NE(b.result["message"].get<std::string>().find("hpu"), std::string::npos)
      << b.result.dump();

  json heads = Config(*root_ + "/bad3", 2);
  heads["model"]["num_attention_heads"] = 3;
  const WorkerRun c = Pretrain(heads);
  EXPECT_EQ(c.result["failure_cause"], "SPEC_ERROR");
  EXPECT_NE(c.result["message"].get<std::string>().find("num_attention_heads"), std::string::npos);

  json typed = Config(*root_ + "/bad4", 2);
  typed["training"]["max_steps"] = "many";
  const WorkerRun d = Pretrain(typed);
  EXPECT_EQ(d.result["failure_cause"], "SPEC_ERROR");
  EXPECT_NE(d.result["message"].get<std::string>().find("training.max_steps"), std::string::npos);
}

// The logits of `model` for a fixed batch of token ids (every id < 400, the
// test vocabulary's size), in fp32 on the CPU.
torch::Tensor FixedLogits(BertForMaskedLM& model) {
  torch::NoGradGuard no_grad;
  model->eval();
  const torch::Tensor ids = torch::arange(2, 2 + 2 * 24, torch::kInt64).remainder(400).reshape({2, 24});  // (B,T)
  return model->forward(ids, torch::Tensor(), torch::Tensor());  // (B,T,V)
}

// A model built from a checkpoint's config and weights.
BertForMaskedLM ModelFromCheckpoint(const std::string& checkpoint) {
  auto [config, tensors] = ReadCheckpointModel(checkpoint);
  BertForMaskedLM model(config);
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : model->NamedParameters()) param.copy_(by_name.at(name));
  return model;
}

// A warm-started run of one step whose learning rate is 0 (the first step of
// a linear warmup) leaves the weights as they were loaded: its checkpoint-1
// holds the weights the trainer started from, before any update.
json WarmStartRun(const json& base, const std::string& from) {
  json config = base;
  config["model"] = json::object();  // the architecture is the source's
  config["init_from"] = from;
  config["training"]["max_steps"] = 1;
  config["training"]["warmup_steps"] = 1;
  return config;
}

TEST_F(TrainingTest, WarmStartFromAnExportStartsFromItsExactLogits) {
  const std::string hf_dir = TrainAndExport("warm-source");
  ASSERT_FALSE(hf_dir.empty());
  BertForMaskedLM exported = LoadHuggingFaceModel(hf_dir);

  const std::string warm = *root_ + "/warm-from-hf";
  const WorkerRun run = Pretrain(WarmStartRun(Config(warm, 1), hf_dir));
  ASSERT_EQ(run.status, 0) << run.result.dump() << run.log;
  EXPECT_NE(run.log.find("warm start from " + hf_dir), std::string::npos) << run.log;
  const CheckpointData first = ReadCheckpoint(warm + "/checkpoints/checkpoint-1");
  EXPECT_EQ(first.step, 1);  // a new run: step 0 + 1, not the source's 4
  EXPECT_EQ(first.config.hidden_size, 64);
  EXPECT_EQ(first.config.vocab_size, 400);
  BertForMaskedLM started = ModelFromCheckpoint(warm + "/checkpoints/checkpoint-1");
  const torch::Tensor want = FixedLogits(exported), got = FixedLogits(started);
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(torch::equal(got, want)) << "max difference " << (got - want).abs().max().item<double>();

  // The same through the engine's own calls, without the worker.
  BertForMaskedLM direct(WarmStartConfig(hf_dir));
  LoadWarmStartWeights(hf_dir, *direct);
  EXPECT_TRUE(torch::equal(FixedLogits(direct), want));
}

TEST_F(TrainingTest, WarmStartFromACheckpointTakesOnlyItsWeights) {
  const std::string source = *root_ + "/warm-ckpt-source";
  ASSERT_EQ(Pretrain(Config(source, 4)).status, 0);
  const std::string checkpoint = source + "/checkpoints/checkpoint-4";
  const std::string warm = *root_ + "/warm-from-ckpt";
  const WorkerRun run = Pretrain(WarmStartRun(Config(warm, 1), checkpoint));
  ASSERT_EQ(run.status, 0) << run.result.dump() << run.log;
  EXPECT_EQ(run.log.find("resumed from"), std::string::npos) << run.log;
  const CheckpointData first = ReadCheckpoint(warm + "/checkpoints/checkpoint-1");
  EXPECT_EQ(first.step, 1);
  EXPECT_EQ(first.consumed_samples, 4);  // one batch: the data order starts over
  EXPECT_EQ(first.optimizer[3].second.item<int64_t>(), 1);  // a fresh optimizer
  BertForMaskedLM from = ModelFromCheckpoint(checkpoint), started = ModelFromCheckpoint(warm + "/checkpoints/checkpoint-1");
  EXPECT_TRUE(torch::equal(FixedLogits(started), FixedLogits(from)));
}

TEST_F(TrainingTest, AWarmStartedRunResumesFromItsOwnCheckpoint) {
  const std::string hf_dir = TrainAndExport("warm-resume-source");
  ASSERT_FALSE(hf_dir.empty());
  const std::string dir = *root_ + "/warm-resume";
  json config = Config(dir, 2);
  config["model"] = json::object();
  config["init_from"] = hf_dir;
  ASSERT_EQ(Pretrain(config).status, 0);
  // Interrupted and restarted with more steps: its checkpoint wins, and the
  // warm start's directory is not even read (it may be gone by then).
  config["training"]["max_steps"] = 4;
  config["init_from"] = *root_ + "/no-such-model";
  const WorkerRun resumed = Pretrain(config);
  ASSERT_EQ(resumed.status, 0) << resumed.result.dump() << resumed.log;
  EXPECT_NE(resumed.log.find("resumed from checkpoint-2"), std::string::npos) << resumed.log;
  EXPECT_EQ(resumed.log.find("warm start from"), std::string::npos) << resumed.log;
  EXPECT_EQ(ReadCheckpoint(dir + "/checkpoints/checkpoint-4").step, 4);
}

TEST_F(TrainingTest, WarmStartRefusesAModelThatDisagreesWithTheConfig) {
  const std::string hf_dir = TrainAndExport("warm-bad-source");
  ASSERT_FALSE(hf_dir.empty());
  json sizes = WarmStartRun(Config(*root_ + "/warm-bad1", 1), hf_dir);
  sizes["model"]["hidden_size"] = 128;
  const WorkerRun a = Pretrain(sizes);
  EXPECT_EQ(a.result["failure_cause"], "SPEC_ERROR") << a.result.dump();
  EXPECT_NE(a.result["message"].get<std::string>().find("model.hidden_size is 128"), std::string::npos)
      << a.result.dump();

  const WorkerRun b = Pretrain(WarmStartRun(Config(*root_ + "/warm-bad2", 1), *root_ + "/dataset"));
  EXPECT_EQ(b.result["failure_cause"], "DATA_ERROR") << b.result.dump();
  EXPECT_NE(b.result["message"].get<std::string>().find("config.json"), std::string::npos) << b.result.dump();
}

// A Hugging Face file written by another tool: TensorFlow-era LayerNorm names
// (gamma/beta), the head's bias under decoder.bias, and tensors the engine's
// model has no use for (pooler, next-sentence head, tied decoder weight).
TEST_F(TrainingTest, LoadsHuggingFaceFilesWithOtherTensorNames) {
  const std::string hf_dir = TrainAndExport("aliases-source");
  ASSERT_FALSE(hf_dir.empty());
  BertForMaskedLM exported = LoadHuggingFaceModel(hf_dir);
  std::vector<std::pair<std::string, torch::Tensor>> renamed;
  for (auto& [name, t] : ReadSafetensors(hf_dir + "/model.safetensors")) {
    std::string n = name;
    if (n.find("LayerNorm.weight") != std::string::npos) n.replace(n.size() - 6, 6, "gamma");
    if (n.find("LayerNorm.bias") != std::string::npos) n.replace(n.size() - 4, 4, "beta");
    if (n == "cls.predictions.bias") n = "cls.predictions.decoder.bias";
    renamed.emplace_back(n, t.to(torch::kBFloat16).to(torch::kFloat32));
  }
  renamed.emplace_back("bert.pooler.dense.weight", torch::zeros({64, 64}));
  renamed.emplace_back("cls.seq_relationship.bias", torch::zeros({2}));
  const std::string other = *root_ + "/aliases-hf";
  fs::create_directories(other);
  fs::copy_file(hf_dir + "/config.json", other + "/config.json");
  std::ofstream(other + "/model.safetensors", std::ios::binary) << EncodeSafetensors(renamed);
  BertForMaskedLM loaded = LoadHuggingFaceModel(other);
  for (auto& [name, param] : loaded->NamedParameters()) {
    torch::Tensor want;
    for (auto& [n, t] : exported->NamedParameters()) {
      if (n == name) want = t.to(torch::kBFloat16).to(torch::kFloat32);
    }
    EXPECT_TRUE(torch::equal(param, want)) << name;
  }
  // Without the masked-LM head the file is refused, naming what is missing.
  renamed.erase(std::remove_if(renamed.begin(), renamed.end(),
                               [](const auto& t) { return t.first.starts_with("cls.predictions.transform"); }),
                renamed.end());
  std::ofstream(other + "/model.safetensors", std::ios::binary | std::ios::trunc) << EncodeSafetensors(renamed);
  try {
    LoadHuggingFaceModel(other);
    ADD_FAILURE() << "a file without the masked-LM head loaded";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor cls.predictions.transform"), std::string::npos) << e.what();
  }
}

TEST_F(TrainingTest, ExportsAHuggingFaceDirectoryThatPredicts) {
  const std::string out_dir = TrainAndExport("export");
  ASSERT_FALSE(out_dir.empty());
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json",
                        "tokenizer_config.json", "special_tokens_map.json"}) {
    EXPECT_TRUE(fs::exists(out_dir + "/" + f)) << f;
  }
  std::ifstream config_file(out_dir + "/config.json");
  const json hf = json::parse(config_file);
  EXPECT_EQ(hf["architectures"][0], "BertForMaskedLM");
  EXPECT_EQ(hf["model_type"], "bert");
  EXPECT_EQ(hf["hidden_size"], 64);
  EXPECT_EQ(hf["vocab_size"], 400);
  std::set<std::string> names;
  for (const auto& [name, t] : ReadSafetensors(out_dir + "/model.safetensors")) {
    names.insert(name);
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
  }
  EXPECT_EQ(names.size(), 5u + 16u * 2u + 5u);
  EXPECT_TRUE(names.count("bert.encoder.layer.1.attention.self.query.weight"));
  EXPECT_TRUE(names.count("cls.predictions.bias"));
  EXPECT_FALSE(
      names.count("cls.predictions.decoder.weight"));  // tied, as save_pretrained leaves it out

  std::string out;
  const int status = testing::RunProcess({testing::BinaryPath("bert-worker"), "predict", "--model",
                                          out_dir, "--top-k", "3", "--json", "the [MASK] of the"},
                                         &out);
  ASSERT_EQ(status, 0) << out;
  const json fills = json::parse(out)["fills"];
  ASSERT_EQ(fills.size(), 1u);
  ASSERT_EQ(fills[0]["top"].size(), 3u);
  EXPECT_GE(fills[0]["top"][0]["score"].get<double>(), fills[0]["top"][1]["score"].get<double>());
  out.clear();
  EXPECT_EQ(
      testing::RunProcess(
          {testing::BinaryPath("bert-worker"), "predict", "--model", out_dir, "no mask"}, &out),
      2);
}

// bench/engine/hf_check.py loads the export as transformers' BertForMaskedLM
// would (safetensors names, shapes and dtypes parsed by hand, the config and
// tokenizer files) and compares its predictions with `bert-worker predict`.
// Needs /usr/bin/python3 with torch (Debian's python3-torch).
TEST_F(TrainingTest, HfCheckLoadsTheExportAsTransformersDoes) {
  if (testing::RunProcess({"/usr/bin/python3", "-c", "import torch"}, nullptr) != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  }
  const std::string out_dir = TrainAndExport("hf-check");
  ASSERT_FALSE(out_dir.empty());
  const char* source = std::getenv("BERT_SOURCE_DIR");
  const std::string script = std::string(source ? source : ".") + "/bench/engine/hf_check.py";
  std::string out;
  const int status =
      testing::RunProcess({"/usr/bin/python3", script, out_dir, testing::BinaryPath("bert-worker"),
                           "the [MASK] said that the [MASK] was"},
                          &out);
  std::cout << out;
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("OK: loadable as Hugging Face BertForMaskedLM"), std::string::npos) << out;
}

}  // namespace
}  // namespace bert::engine
