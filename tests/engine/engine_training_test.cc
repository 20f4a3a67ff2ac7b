// bert-worker pretrain/export/predict end to end on tiny models: exact resume
// (also past a corrupt checkpoint), two Gloo ranks against one process,
// resuming on a different world size, SIGTERM, bad input, export and predict.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/checkpoint.h"
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
