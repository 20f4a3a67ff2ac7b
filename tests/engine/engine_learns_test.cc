// It learns: bert-tiny trained on real English text for a couple of CPU
// minutes predicts held-out masked words far better than always guessing the
// most frequent word.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/mlm_batch_loader.h"
#include "engine/packed_dataset.h"
#include "tests/engine/test_corpus.h"

namespace bert::engine {
namespace {

using nlohmann::json;

// The accuracy of always predicting the most frequent masked label of the
// validation split, under the same masks the trainer's evaluation uses.
double MostFrequentTokenAccuracy(const std::string& dataset_dir, uint64_t seed) {
  const PackedDataset ds = PackedDataset::Open(dataset_dir, false);
  MaskingOptions masking;
  masking.vocab_size = ds.vocab_size();
  masking.special_ids = ds.special_ids();
  masking.seed = seed;
  masking.stream = 1;
  const MlmMasker masker(masking);
  const PackedSplit& validation = ds.split("validation");
  const MlmBatch batch = MaskContiguousBlocks(validation, masker, 0, validation.blocks());
  std::map<int64_t, int64_t> counts;
  for (int64_t label : batch.labels) ++counts[label];
  int64_t best = 0;
  for (const auto& [id, n] : counts) best = std::max(best, n);
  return static_cast<double>(best) / static_cast<double>(batch.labels.size());
}

TEST(EngineLearnsTest, BertTinyBeatsTheMostFrequentTokenByFar) {
  const std::string root = testing::MakeTempDir("learns");
  const auto lines = testing::LoadEnglishLines(4000);
  ASSERT_GT(lines.size(), 1000u);
  const testing::WordVocab vocab = testing::BuildWordVocab(lines, 2000);
  testing::WritePackedDataset(root + "/dataset", lines, vocab, 64, 64);
  const json config = {
      {"dataset_dir", root + "/dataset"},
      {"output_dir", root + "/out"},
      {"model", {{"preset", "bert-tiny"}, {"max_position_embeddings", 64}, {"hidden_dropout_prob", 0.0},
                 {"attention_probs_dropout_prob", 0.0}}},
      {"training", {{"max_steps", 500}, {"per_device_batch_size", 32}, {"learning_rate", 2e-3},
                    {"warmup_steps", 30}, {"weight_decay", 0.01}, {"save_steps", 0}, {"logging_steps", 50},
                    {"eval_steps", 0}, {"seed", 42}, {"peak_flops", 1e11}}},
      {"device", "cpu"},
      {"threads", 2}};
  std::filesystem::create_directories(root + "/out");
  std::ofstream(root + "/config.json") << config.dump();
  std::string out;
  const int status =
      testing::RunProcess({testing::BinaryPath("bert-worker"), "pretrain", "--config", root + "/config.json"}, &out);
  ASSERT_EQ(status, 0) << out;
  double accuracy = -1, first_loss = -1, last_loss = -1;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line);
    if (j["type"] != "metric") continue;
    if (j["name"] == "eval/accuracy") accuracy = j["value"];
    if (j["name"] == "train/loss") {
      if (first_loss < 0) first_loss = j["value"];
      last_loss = j["value"];
    }
  }
  const double baseline = MostFrequentTokenAccuracy(root + "/dataset", 42);
  std::cout << "held-out masked-token accuracy " << accuracy << ", most frequent token " << baseline
            << ", train loss " << first_loss << " -> " << last_loss << "\n";
  EXPECT_LT(last_loss, first_loss);
  EXPECT_GT(accuracy, 2.0 * baseline);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace bert::engine
