// The quickstart's recipe learns: examples/quickstart.yaml, run stage by stage
// through `bert-agent run-stage` as the local agent runs it (prepare, tokenizer,
// preprocess, pretrain in bert-worker), on the committed excerpt of the Brown
// corpus (4,000 of its 57,340 lines) and with fewer steps, reaches a held-out
// masked-token accuracy well above always guessing the most frequent token.
// Everything else is the spec's own: model, masking rate, dropout, learning
// rate and warmup, batch, precision, sequence length, vocabulary.
// scripts/quickstart-bench.sh runs the real quickstart and prints its accuracy
// and wall time.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "formats/packed_dataset.h"

namespace bert {
namespace {
namespace fs = std::filesystem;

// 12 passes over the excerpt's ~1,000 blocks of 128 tokens (the quickstart
// makes about 2 over the whole corpus); a held-out twentieth (~50 blocks)
// gives ~900 masked tokens, so the accuracy is known to about +-1.5%.
// Measured 2026-12-01 (2 cores, avx512_bf16): 22.0% in bf16, 22.8% in fp32,
// against 4.6% for the most frequent token; 200 steps reach 12.6%. With
// Hugging Face's initialisation instead of local-attention the quickstart
// stays on the unigram plateau (README.md).
constexpr int kSteps = 400;
constexpr char kValidationFraction[] = "0.05";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// `yaml` with the value of the one line whose key (after indentation) is
// `key` replaced; fails the test when there is not exactly one such line.
std::string SetValue(const std::string& yaml, const std::string& key, const std::string& value) {
  std::istringstream in(yaml);
  std::string line, out;
  int found = 0;
  while (std::getline(in, line)) {
    size_t indent = line.find_first_not_of(' ');
    if (indent != std::string::npos && line.compare(indent, 2, "- ") == 0) indent += 2;  // a list item
    if (indent != std::string::npos && line.compare(indent, key.size() + 1, key + ":") == 0) {
      line = line.substr(0, indent) + key + ": " + value;
      ++found;
    }
    out += line + "\n";
  }
  EXPECT_EQ(found, 1) << "examples/quickstart.yaml has no single \"" << key << ":\" line";
  return out;
}

// The share of the most frequent token among the held-out split's tokens
// (special tokens, never masked, left out): the accuracy of always guessing it.
double MostFrequentTokenShare(const std::string& dataset_dir) {
  auto dataset = formats::PackedDataset::Open(dataset_dir);
  EXPECT_TRUE(dataset.ok()) << dataset_dir;
  if (!dataset.ok()) return 1;
  std::map<uint32_t, bool> special;
  for (const auto& [name, id] : dataset->manifest().special_token_ids) special[id] = true;
  std::map<uint32_t, int64_t> counts;
  int64_t total = 0;
  for (uint64_t b = 0; b < dataset->num_blocks("validation"); ++b) {
    auto block = dataset->Block("validation", b);
    EXPECT_TRUE(block.ok());
    if (!block.ok()) return 1;
    for (uint32_t id : *block) {
      if (special.count(id)) continue;
      ++counts[id];
      ++total;
    }
  }
  int64_t best = 0;
  for (const auto& [id, n] : counts) best = std::max(best, n);
  return total == 0 ? 1 : static_cast<double>(best) / static_cast<double>(total);
}

TEST(QuickstartRecipeTest, LearnsWellBeyondTheMostFrequentToken) {
  const std::string agent = Env("BERT_BIN_DIR") + "/bert-agent";
  const std::string worker = Env("BERT_BIN_DIR") + "/bert-worker";
  if (access(agent.c_str(), X_OK) != 0 || access(worker.c_str(), X_OK) != 0) {
    GTEST_SKIP() << "needs bert-agent and bert-worker in $BERT_BIN_DIR";
  }
  const fs::path source = Env("BERT_SOURCE_DIR");
  const fs::path corpus = source / "tests/engine/testdata/brown_excerpt.txt";
  const std::string spec = ReadText(source / "examples/quickstart.yaml");
  ASSERT_FALSE(spec.empty()) << "no examples/quickstart.yaml under $BERT_SOURCE_DIR";
  ASSERT_TRUE(fs::exists(corpus)) << corpus;

  const fs::path dir = fs::temp_directory_path() / ("bert_quickstart_test_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string yaml = SetValue(spec, "paths", "[\"" + corpus.string() + "\"]");
  yaml = SetValue(yaml, "max_steps", std::to_string(kSteps));
  yaml = SetValue(yaml, "eval_steps", std::to_string(kSteps));
  yaml = SetValue(yaml, "save_steps", std::to_string(kSteps));
  yaml = SetValue(yaml, "dir", (dir / "model").string());
  // The excerpt is small: hold out a larger share of it than the quickstart's 1%.
  const size_t preprocess = yaml.find("preprocess:\n");
  ASSERT_NE(preprocess, std::string::npos) << "examples/quickstart.yaml has no preprocess section";
  yaml.insert(preprocess + 12, std::string("  validation_fraction: ") + kValidationFraction + "\n");
  std::ofstream(dir / "job.yaml") << yaml;

  std::string out;
  for (const char* stage : {"prepare", "tokenizer", "preprocess", "pretrain"}) {
    const fs::path log = dir / (std::string(stage) + ".log");
    const std::string cmd = agent + " run-stage " + stage + " --spec " + (dir / "job.yaml").string() +
                            " --work-dir " + (dir / "work").string() + " --worker " + worker +
                            " --threads 2 >" + log.string() + " 2>&1";
    const int status = std::system(cmd.c_str());
    out = ReadText(log);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << stage << ":\n" << out << "\n" << yaml;
  }

  // run-stage prints the worker's metrics as "metric eval/accuracy = 0.21 (step 160)".
  double accuracy = -1, first_loss = -1, last_loss = -1;
  std::string precision_line, init_line;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("precision auto") != std::string::npos) precision_line = line;
    if (line.find("initialization local-attention") != std::string::npos) init_line = line;
    const size_t at = line.find("metric ");
    if (at == std::string::npos) continue;
    std::istringstream words(line.substr(at + 7));
    std::string name, equals;
    double value = 0;
    if (!(words >> name >> equals >> value)) continue;
    if (name == "eval/accuracy") accuracy = value;
    if (name == "train/loss") {
      if (first_loss < 0) first_loss = value;
      last_loss = value;
    }
  }
  const double baseline = MostFrequentTokenShare((dir / "work/local/preprocess/shard-0/dataset").string());
  std::cout << "quickstart recipe, " << kSteps << " steps on the Brown excerpt: held-out accuracy "
            << accuracy << ", most frequent token " << baseline << ", train loss " << first_loss
            << " -> " << last_loss << "\n"
            << precision_line << "\n";
  EXPECT_FALSE(precision_line.empty()) << "the spec asks for precision auto; the worker says what it chose";
  EXPECT_FALSE(init_line.empty()) << "the spec asks for initialization local-attention; the worker says so";
  EXPECT_LT(last_loss, first_loss - 1.0);
  EXPECT_GT(accuracy, 3 * baseline);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bert
