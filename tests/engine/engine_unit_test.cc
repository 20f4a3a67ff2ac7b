// Unit tests of the engine's parts: masking, the dataset reader adapter and
// batch order, the schedule, the model (names, sparse head, padding), the
// optimizer and the safetensors codec.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>

#include "engine/bert_model.h"
#include "engine/checkpoint.h"
#include "engine/cpu_memory.h"
#include "engine/dropout.h"
#include "engine/engine_error.h"
#include "engine/flat_adamw.h"
#include "engine/local_attention_init.h"
#include "engine/mlm_batch_loader.h"
#include "engine/mlm_masker.h"
#include "engine/packed_dataset.h"
#include "engine/safetensors.h"
#include "engine/trainer.h"
#include "engine/worker_config.h"
#include "tests/engine/test_corpus.h"

namespace bert::engine {
namespace {

MaskingOptions TestMasking() {
  MaskingOptions m;
  m.vocab_size = 1000;
  m.special_ids = {0, 1, 2, 3, 4};
  m.seed = 7;
  return m;
}

TEST(MlmMaskerTest, FollowsDataCollatorProportions) {
  const MlmMasker masker(TestMasking());
  const int64_t T = 512, samples = 400;
  int64_t chosen = 0, to_mask = 0, unchanged = 0, tokens = 0;
  for (int64_t s = 0; s < samples; ++s) {
    std::vector<int64_t> ids(T), original;
    for (int64_t t = 0; t < T; ++t)
      ids[t] = t == 0 ? 2 : t == T - 1 ? 3 : 5 + (s * 31 + t * 17) % 995;
    original = ids;
    std::vector<int64_t> positions, labels;
    masker.Mask(s, ids.data(), T, 0, &positions, &labels);
    tokens += T - 2;
    chosen += static_cast<int64_t>(positions.size());
    for (size_t i = 0; i < positions.size(); ++i) {
      const int64_t p = positions[i];
      ASSERT_NE(p, 0) << "[CLS] must never be chosen";
      ASSERT_NE(p, T - 1) << "[SEP] must never be chosen";
      EXPECT_EQ(labels[i], original[p]);
      if (ids[p] == 4) ++to_mask;
      if (ids[p] == original[p]) ++unchanged;
    }
    for (int64_t t = 0; t < T; ++t) {  // tokens not chosen are untouched
      if (std::find(positions.begin(), positions.end(), t) == positions.end()) {
        ASSERT_EQ(ids[t], original[t]);
      }
    }
  }
  EXPECT_NEAR(static_cast<double>(chosen) / tokens, 0.15, 0.005);
  EXPECT_NEAR(static_cast<double>(to_mask) / chosen, 0.8, 0.01);
  EXPECT_NEAR(static_cast<double>(unchanged) / chosen, 0.1 + 0.1 / 1000, 0.01);
}

// Hugging Face's mask_replace_prob / random_replace_prob: all [MASK] with
// (1, 0); all random with (0, 1); and chosen tokens are still 15%.
TEST(MlmMaskerTest, ReplacementProbabilitiesAreHonoured) {
  for (const auto& [mask, random] : {std::pair{1.0, 0.0}, std::pair{0.0, 1.0}, std::pair{0.5, 0.0}}) {
    MaskingOptions options = TestMasking();
    options.mask_replace_prob = mask;
    options.random_replace_prob = random;
    const MlmMasker masker(options);
    int64_t chosen = 0, to_mask = 0, unchanged = 0, tokens = 0;
    for (int64_t s = 0; s < 200; ++s) {
      std::vector<int64_t> ids(256);
      for (int64_t t = 0; t < 256; ++t) ids[t] = 5 + (s * 31 + t * 17) % 995;
      const std::vector<int64_t> original = ids;
      std::vector<int64_t> positions, labels;
      masker.Mask(s, ids.data(), 256, 0, &positions, &labels);
      tokens += 256;
      chosen += static_cast<int64_t>(positions.size());
      for (const int64_t p : positions) {
        if (ids[p] == 4) ++to_mask;
        if (ids[p] == original[p]) ++unchanged;
      }
    }
    EXPECT_NEAR(static_cast<double>(chosen) / tokens, 0.15, 0.01);
    EXPECT_NEAR(static_cast<double>(to_mask) / chosen, mask, 0.02) << mask << "/" << random;
    EXPECT_NEAR(static_cast<double>(unchanged) / chosen, 1 - mask - random + random / 1000, 0.02)
        << mask << "/" << random;
  }
}

TEST(MlmMaskerTest, DeterministicPerSampleAndIndependentAcrossSamples) {
  const MlmMasker masker(TestMasking());
  std::vector<int64_t> a(128, 100), b(128, 100), c(128, 100);
  std::vector<int64_t> pa, la, pb, lb, pc, lc;
  masker.Mask(42, a.data(), 128, 0, &pa, &la);
  masker.Mask(42, b.data(), 128, 0, &pb, &lb);
  masker.Mask(43, c.data(), 128, 0, &pc, &lc);
  EXPECT_EQ(a, b);
  EXPECT_EQ(pa, pb);
  EXPECT_NE(pa, pc);
}

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("dataset");
    const auto lines = testing::LoadEnglishLines(400);
    ASSERT_FALSE(lines.empty()) << "no English text found";
    vocab_ = testing::BuildWordVocab(lines, 500);
    train_blocks_ = testing::WritePackedDataset(dir_, lines, vocab_, 32, 8);
  }
  std::string dir_;
  testing::WordVocab vocab_;
  int64_t train_blocks_ = 0;
};

TEST_F(DatasetTest, ReadsBlocksAcrossShards) {
  const PackedDataset ds = PackedDataset::Open(dir_, /*verify_checksums=*/true);
  EXPECT_EQ(ds.seq_len(), 32);
  EXPECT_EQ(ds.vocab_size(), 500);
  const PackedSplit& train = ds.split("train");
  ASSERT_EQ(train.blocks(), train_blocks_);
  EXPECT_EQ(ds.split("validation").blocks(), 8);
  std::vector<int64_t> block(32);
  for (int64_t i : {int64_t{0}, train_blocks_ / 2 - 1, train_blocks_ / 2, train_blocks_ - 1}) {
    train.ReadBlock(i, block.data());
    for (int64_t id : block) ASSERT_TRUE(id >= 0 && id < 500);
  }
  EXPECT_THROW(train.ReadBlock(train_blocks_, block.data()), EngineError);
  EXPECT_THROW(ds.split("test"), EngineError);
}

TEST_F(DatasetTest, RejectsTruncatedShardNamingIt) {
  std::filesystem::resize_file(dir_ + "/train-00001.bin",
                               std::filesystem::file_size(dir_ + "/train-00001.bin") - 3);
  try {
    PackedDataset::Open(dir_, false);
    FAIL() << "a truncated shard was accepted";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.cause(), FailureCause::kArtifactCorrupt);
    EXPECT_NE(std::string(e.what()).find("train-00001.bin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST_F(DatasetTest, RejectsCorruptShardWhenVerifying) {
  {
    std::fstream f(dir_ + "/validation-00000.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5);
    f.put('\x7f');
  }
  EXPECT_NO_THROW(PackedDataset::Open(dir_, false));
  EXPECT_THROW(PackedDataset::Open(dir_, true), EngineError);
}

TEST_F(DatasetTest, RejectsWrongFormatVersionAndMissingManifest) {
  std::string text;
  {
    std::ifstream in(dir_ + "/manifest.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = text.find("\"format_version\": 1");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 19, "\"format_version\": 9");
  std::ofstream(dir_ + "/manifest.json") << text;
  try {
    PackedDataset::Open(dir_, false);
    FAIL();
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("format_version"), std::string::npos) << e.what();
  }
  std::filesystem::remove(dir_ + "/manifest.json");
  EXPECT_THROW(PackedDataset::Open(dir_, false), EngineError);
}

TEST_F(DatasetTest, RequiresEverySpecialTokenIdNamingTheField) {
  std::string text;
  {
    std::ifstream in(dir_ + "/manifest.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = text.find("\"mask\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 6, "\"msk\"");
  std::ofstream(dir_ + "/manifest.json") << text;
  try {
    PackedDataset::Open(dir_, false);
    FAIL() << "a dataset without a [MASK] id was accepted";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.cause(), FailureCause::kDataError);
    EXPECT_NE(std::string(e.what()).find("manifest.json: special_token_ids.mask"), std::string::npos)
        << e.what();
  }
}

TEST_F(DatasetTest, TwoRanksSplitTheSameGlobalBatches) {
  const PackedDataset ds = PackedDataset::Open(dir_, false);
  const PackedSplit& train = ds.split("train");
  MaskingOptions masking = TestMasking();
  masking.vocab_size = 500;
  LoaderOptions one;
  one.batch_size = 4;
  one.accumulation = 2;
  one.start_sample = 6;
  one.max_steps = 3;
  MlmBatchLoader single(train, masking, one);
  LoaderOptions two = one;
  two.batch_size = 2;
  two.world_size = 2;
  two.rank = 0;
  MlmBatchLoader rank0(train, masking, two);
  two.rank = 1;
  MlmBatchLoader rank1(train, masking, two);
  for (int micro = 0; micro < 6; ++micro) {
    const MlmBatch whole = single.Next(), a = rank0.Next(), b = rank1.Next();
    std::vector<int64_t> joined = a.input_ids;
    joined.insert(joined.end(), b.input_ids.begin(), b.input_ids.end());
    ASSERT_EQ(joined, whole.input_ids) << "micro-batch " << micro;
    EXPECT_EQ(a.labels.size() + b.labels.size(), whole.labels.size());
  }
}

TEST(ScheduleTest, LinearWarmupThenDecay) {
  EXPECT_DOUBLE_EQ(LinearScheduleLr(1.0, 0, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(LinearScheduleLr(1.0, 5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(LinearScheduleLr(1.0, 10, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(LinearScheduleLr(1.0, 60, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(LinearScheduleLr(1.0, 110, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(LinearScheduleLr(2.0, 0, 0, 100), 2.0);
}

BertConfig TinyConfig() {
  BertConfig c = *PresetConfig("bert-tiny", 300);
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  return c;
}

TEST(BertModelTest, HasHuggingFaceNamesAndShapes) {
  BertForMaskedLM model(*PresetConfig("bert-tiny", 300));
  std::map<std::string, std::vector<int64_t>> expected = {
      {"bert.embeddings.word_embeddings.weight", {300, 128}},
      {"bert.embeddings.position_embeddings.weight", {512, 128}},
      {"bert.embeddings.token_type_embeddings.weight", {2, 128}},
      {"bert.embeddings.LayerNorm.weight", {128}},
      {"bert.embeddings.LayerNorm.bias", {128}},
      {"cls.predictions.bias", {300}},
      {"cls.predictions.transform.dense.weight", {128, 128}},
      {"cls.predictions.transform.dense.bias", {128}},
      {"cls.predictions.transform.LayerNorm.weight", {128}},
      {"cls.predictions.transform.LayerNorm.bias", {128}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    for (const char* qkv : {"query", "key", "value"}) {
      expected[p + "attention.self." + qkv + ".weight"] = {128, 128};
      expected[p + "attention.self." + qkv + ".bias"] = {128};
    }
    expected[p + "attention.output.dense.weight"] = {128, 128};
    expected[p + "attention.output.dense.bias"] = {128};
    expected[p + "attention.output.LayerNorm.weight"] = {128};
    expected[p + "attention.output.LayerNorm.bias"] = {128};
    expected[p + "intermediate.dense.weight"] = {512, 128};
    expected[p + "intermediate.dense.bias"] = {512};
    expected[p + "output.dense.weight"] = {128, 512};
    expected[p + "output.dense.bias"] = {128};
    expected[p + "output.LayerNorm.weight"] = {128};
    expected[p + "output.LayerNorm.bias"] = {128};
  }
  std::map<std::string, std::vector<int64_t>> actual;
  for (const auto& [name, t] : model->NamedParameters()) actual[name] = t.sizes().vec();
  EXPECT_EQ(actual, expected);
}

TEST(BertModelTest, InitialisationFollowsHuggingFace) {
  torch::manual_seed(0);
  BertForMaskedLM model(*PresetConfig("bert-mini", 2000));
  InitBertWeights(model);
  const torch::Tensor w = model->bert->embeddings->word_embeddings->weight;
  EXPECT_NEAR(w.slice(0, 1).std().item<double>(), 0.02, 0.001);
  EXPECT_EQ(w[0].abs().sum().item<double>(), 0.0);  // the padding row
  EXPECT_EQ(model->head->bias.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(model->bert->embeddings->LayerNorm->weight.mean().item<double>(), 1.0);
  // The decoder is tied to the word embeddings.
  EXPECT_EQ(model->head->decoder_weight.data_ptr(), w.data_ptr());
}

TEST(BertModelTest, SparseHeadLossEqualsDenseLoss) {
  torch::manual_seed(1);
  BertForMaskedLM model(TinyConfig());
  InitBertWeights(model);
  const torch::Tensor ids = torch::randint(5, 300, {3, 16}, torch::kInt64);  // (B,T)
  const torch::Tensor positions = torch::tensor({0, 5, 17, 30, 47}, torch::kInt64);
  const torch::Tensor labels = torch::randint(5, 300, {5}, torch::kInt64);
  // Dense, as Hugging Face: logits for every token, labels -100 elsewhere.
  torch::Tensor dense_labels = torch::full({48}, -100, torch::kInt64);
  dense_labels.index_put_({positions}, labels);
  const torch::Tensor dense_loss =
      torch::cross_entropy_loss(model->forward(ids).view({48, 300}), dense_labels);
  dense_loss.backward();
  const torch::Tensor dense_grad = model->bert->embeddings->word_embeddings->weight.grad().clone();
  model->zero_grad();
  const torch::Tensor sparse_loss =
      torch::cross_entropy_loss(model->MaskedLogits(ids, positions), labels);
  sparse_loss.backward();
  EXPECT_NEAR(sparse_loss.item<double>(), dense_loss.item<double>(), 1e-5);
  EXPECT_TRUE(torch::allclose(model->bert->embeddings->word_embeddings->weight.grad(), dense_grad,
                              1e-5, 1e-6));
}

TEST(BertModelTest, AttentionIgnoresPadding) {
  torch::manual_seed(2);
  BertForMaskedLM model(TinyConfig());
  InitBertWeights(model);
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::randint(5, 300, {1, 10}, torch::kInt64);
  const torch::Tensor padded = torch::cat({ids, torch::zeros({1, 4}, torch::kInt64)}, 1);
  const torch::Tensor mask = torch::cat({torch::ones({1, 10}), torch::zeros({1, 4})}, 1);
  const torch::Tensor a = model->forward(ids);
  const torch::Tensor b = model->forward(padded, {}, mask).slice(1, 0, 10);
  EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-5));
  const torch::Tensor unmasked = model->forward(padded).slice(1, 0, 10);
  EXPECT_FALSE(torch::allclose(a, unmasked, 1e-4, 1e-5))
      << "padding should matter without the mask";
}

TEST(FlatAdamWTest, MatchesTorchAdamWWithDecayGroups) {
  torch::manual_seed(3);
  std::vector<std::pair<std::string, torch::Tensor>> mine = {
      {"dense.weight", torch::randn({4, 3}).requires_grad_()},
      {"dense.bias", torch::randn({4}).requires_grad_()},
      {"LayerNorm.weight", torch::randn({4}).requires_grad_()}};
  std::vector<torch::Tensor> theirs;
  for (auto& [n, t] : mine) theirs.push_back(t.detach().clone().requires_grad_());
  AdamWOptions options;
  options.weight_decay = 0.1;
  FlatAdamW flat(mine, options);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{theirs[0]},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(0.01).weight_decay(0.1).eps(1e-8)));
  groups.emplace_back(std::vector<torch::Tensor>{theirs[1], theirs[2]},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(0.01).weight_decay(0.0).eps(1e-8)));
  torch::optim::AdamW reference(std::move(groups), torch::optim::AdamWOptions(0.01));
  for (int step = 0; step < 4; ++step) {
    const torch::Tensor x = torch::randn({3});
    auto loss_of = [&](const std::vector<torch::Tensor>& p) {
      return (torch::mv(p[0], x) + p[1]).mul(p[2]).pow(2).sum();
    };
    flat.ZeroGrad();
    loss_of({mine[0].second, mine[1].second, mine[2].second}).backward();
    flat.Step(0.01);
    reference.zero_grad();
    loss_of(theirs).backward();
    reference.step();
  }
  for (size_t i = 0; i < theirs.size(); ++i) {
    EXPECT_TRUE(torch::allclose(mine[i].second, theirs[i], 1e-5, 1e-6)) << mine[i].first;
  }
}

TEST(SafetensorsTest, RoundTripsNamesShapesAndBytes) {
  const std::string dir = testing::MakeTempDir("safetensors");
  const std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"a.weight", torch::randn({3, 5})}, {"b", torch::arange(7, torch::kInt64)}};
  const std::string bytes = EncodeSafetensors(tensors);
  std::ofstream(dir + "/m.safetensors", std::ios::binary) << bytes;
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  EXPECT_EQ((8 + header) % 8, 0u);
  const auto back = ReadSafetensors(dir + "/m.safetensors");
  ASSERT_EQ(back.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back[i].first, tensors[i].first);
    EXPECT_TRUE(torch::equal(back[i].second, tensors[i].second));
  }
  std::filesystem::resize_file(dir + "/m.safetensors", bytes.size() - 4);
  EXPECT_THROW(ReadSafetensors(dir + "/m.safetensors"), EngineError);
}

// A header whose data_offsets wrap around uint64 (begin + the data start
// overflows, end - begin still matches the shape) is refused before any copy.
TEST(SafetensorsTest, RefusesOffsetsThatOverflow) {
  const std::string dir = testing::MakeTempDir("safetensors-overflow");
  const std::string json =
      R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[18446744073709551611,18446744073709551615]}})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(json.size());
  bytes += json + "abcd";
  std::ofstream(dir + "/m.safetensors", std::ios::binary) << bytes;
  EXPECT_THROW(ReadSafetensors(dir + "/m.safetensors"), EngineError);
  // A shape of 2^40 x 2^40 elements: refused before allocating anything.
  const std::string huge = R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})";
  bytes.assign(8, '\0');
  bytes[0] = static_cast<char>(huge.size());
  bytes += huge + "abcd";
  std::ofstream(dir + "/m.safetensors", std::ios::binary | std::ios::trunc) << bytes;
  try {
    ReadSafetensors(dir + "/m.safetensors");
    FAIL() << "accepted";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'w'.shape"), std::string::npos) << e.what();
  }
}

// A small checkpoint, one model tensor, `ranks` rng states.
CheckpointData SmallCheckpoint(int64_t ranks) {
  CheckpointData data;
  data.step = 3;
  data.consumed_samples = 12;
  data.world_size = ranks;
  data.seed = 5;
  data.config = TinyConfig();
  data.model = {{"w", torch::ones({2})}};
  data.optimizer = {{"params", torch::ones({2})}, {"exp_avg", torch::zeros({2})},
                    {"exp_avg_sq", torch::zeros({2})}, {"step", torch::zeros({1})}};
  for (int64_t r = 0; r < ranks; ++r) data.rng_states.push_back(torch::zeros({4}, torch::kUInt8));
  data.trainer_json = "{}";
  return data;
}

// Rewrites `key` of the JSON file `path`.
void EditJson(const std::string& path, const std::string& key, const nlohmann::json& value) {
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in);
  j[key] = value;
  std::ofstream(path, std::ios::trunc) << j.dump();
}

std::string ReadCheckpointError(const std::string& dir) {
  try {
    ReadCheckpoint(dir);
  } catch (const EngineError& e) {
    EXPECT_EQ(e.cause(), FailureCause::kArtifactCorrupt);
    return e.what();
  }
  ADD_FAILURE() << dir << " was read";
  return "";
}

TEST(CheckpointTest, WorldSizeIsBoundedAndAgreesWithTheRngStates) {
  const std::string root = testing::MakeTempDir("ckpt-world");
  const std::string dir = WriteCheckpoint(root, SmallCheckpoint(2)).path;
  EXPECT_EQ(ReadCheckpoint(dir).rng_states.size(), 2u);
  const std::string state = dir + "/trainer_state.json";
  EditJson(state, "world_size", 1000000000000);  // would loop 10^12 times
  EXPECT_NE(ReadCheckpointError(dir).find("trainer_state.json: world_size"), std::string::npos);
  EditJson(state, "world_size", -1);
  EXPECT_NE(ReadCheckpointError(dir).find("world_size"), std::string::npos);
  EditJson(state, "world_size", 1);  // rng.pt holds 2 states
  EXPECT_NE(ReadCheckpointError(dir).find("rng.pt"), std::string::npos);
  EditJson(state, "world_size", 3);  // rng.pt lacks rank2
  EXPECT_NE(ReadCheckpointError(dir).find("rng.pt"), std::string::npos);
}

TEST(CheckpointTest, ConfigSizesAreBounded) {
  const std::string root = testing::MakeTempDir("ckpt-config");
  const std::string dir = WriteCheckpoint(root, SmallCheckpoint(1)).path;
  EditJson(dir + "/config.json", "vocab_size", int64_t{1} << 40);
  EXPECT_NE(ReadCheckpointError(dir).find("config.json: vocab_size"), std::string::npos);
  EditJson(dir + "/config.json", "vocab_size", "many");
  EXPECT_NE(ReadCheckpointError(dir).find("config.json: vocab_size"), std::string::npos);
}

TEST(CheckpointTest, ManifestNamesStayInsideTheCheckpoint) {
  const std::string root = testing::MakeTempDir("ckpt-manifest");
  const std::string dir = WriteCheckpoint(root, SmallCheckpoint(1)).path;
  std::string why;
  ASSERT_TRUE(VerifyCheckpoint(dir, &why)) << why;
  std::ifstream in(dir + "/manifest.json");
  nlohmann::json m = nlohmann::json::parse(in);
  m["files"][0]["name"] = "../../../etc/passwd";
  std::ofstream(dir + "/manifest.json", std::ios::trunc) << m.dump();
  EXPECT_FALSE(VerifyCheckpoint(dir, &why));
  EXPECT_NE(why.find("not a plain file name"), std::string::npos) << why;
}

TEST(BertModelTest, Bf16AutocastStaysCloseToFp32) {
  torch::manual_seed(4);
  BertForMaskedLM model(TinyConfig());
  InitBertWeights(model);
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::randint(5, 300, {2, 16}, torch::kInt64);
  const torch::Tensor fp32 = model->forward(ids);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(true);
  const torch::Tensor bf16 = model->forward(ids).to(torch::kFloat32);
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
  EXPECT_LT((bf16 - fp32).abs().max().item<double>(), 0.1);
}

TEST(DropoutTest, DropsAFractionPAndScalesTheRest) {
  torch::manual_seed(11);
  const torch::Tensor x = torch::rand({1000, 1000}) + 0.5;  // no zeros of its own
  const torch::Tensor y = Dropout(x, 0.1, /*training=*/true);
  const torch::Tensor kept = y != 0;
  // 1e6 draws: the dropped fraction's standard deviation is 3e-4.
  EXPECT_NEAR(1.0 - kept.to(torch::kFloat64).mean().item<double>(), 0.1, 2e-3);
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.masked_select(kept) / 0.9));
  EXPECT_TRUE(torch::equal(Dropout(x, 0.1, /*training=*/false), x));
  EXPECT_TRUE(torch::equal(Dropout(x, 0.0, /*training=*/true), x));
  EXPECT_TRUE(torch::equal(Dropout(x, 1.0, /*training=*/true), torch::zeros_like(x)));
  EXPECT_THROW(Dropout(x, 1.5, true), c10::Error);
}

TEST(DropoutTest, BackwardScalesTheGradientByTheSameMask) {
  torch::manual_seed(12);
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    const torch::Tensor x = (torch::rand({64, 300}) + 0.5).to(dtype).requires_grad_(true);
    const torch::Tensor y = Dropout(x, 0.25, /*training=*/true);
    const torch::Tensor g = torch::rand({64, 300}).to(dtype);
    y.backward(g);
    const torch::Tensor mask = (y != 0).to(torch::kFloat32);
    const float scale = 1.0f / 0.75f;  // the kernel's product: float(g) * scale, rounded to dtype
    const torch::Tensor expected = (g.to(torch::kFloat32) * mask * scale).to(dtype);
    EXPECT_TRUE(torch::equal(x.grad(), expected)) << dtype;
  }
}

TEST(DropoutTest, FollowsTheDefaultGeneratorAndNotTheThreadCount) {
  const torch::Tensor x = torch::ones({3, 5000});  // several generator chunks
  const int threads = at::get_num_threads();
  torch::manual_seed(5);
  at::set_num_threads(1);
  const torch::Tensor one_thread = Dropout(x, 0.5, true);
  const torch::Tensor next_draw = Dropout(x, 0.5, true);
  torch::manual_seed(5);
  at::set_num_threads(2);
  const torch::Tensor two_threads = Dropout(x, 0.5, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one_thread, two_threads));
  EXPECT_FALSE(torch::equal(one_thread, next_draw));
  // Rows are not copies of each other (each chunk its own stream).
  EXPECT_FALSE(torch::equal(one_thread[0], one_thread[1]));
}

TEST(CpuMemoryTest, LargeBlocksAreReusedAndSmallOnesStillWork) {
  UseFastCpuMemory();
  const int64_t large = static_cast<int64_t>(kLargeCpuBlock) / 4 + 1000;  // floats
  void* first = nullptr;
  {
    torch::Tensor a = torch::full({large}, 3.0f);
    first = a.data_ptr();
    EXPECT_EQ(a.sum().item<double>(), 3.0 * static_cast<double>(large));
  }
  torch::Tensor b = torch::empty({large - 10});  // a little smaller: the kept block fits it
  EXPECT_EQ(b.data_ptr(), first);
  b.fill_(1.0f);
  torch::Tensor c = torch::ones({large * 3});  // far larger: a new block
  EXPECT_NE(c.data_ptr(), first);
  EXPECT_EQ(c.sum().item<double>(), 3.0 * static_cast<double>(large));
  torch::Tensor small = torch::arange(100, torch::kFloat32);
  EXPECT_EQ(small.sum().item<double>(), 4950.0);
  // More than the address space: a libtorch error naming the size, not a crash.
  try {
    torch::empty({int64_t{1} << 48}, torch::kUInt8);
    ADD_FAILURE() << "a 256 TB tensor was allocated";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("281474976710656 bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b.data_ptr(), first);  // what was allocated is untouched
}

// Layer 0's attention probabilities (B,H,T,T), from the model's own weights.
torch::Tensor FirstLayerAttention(BertForMaskedLM& model, const torch::Tensor& ids) {
  torch::NoGradGuard no_grad;
  model->eval();
  const torch::Tensor x = model->bert->embeddings->forward(ids, torch::Tensor());
  BertSelfAttentionImpl& self = *(*model->bert->layers)[0]->as<BertLayer>()->attention->self;
  const int64_t B = ids.size(0), T = ids.size(1), H = self.heads, D = self.head_size;
  auto heads = [&](torch::nn::Linear& linear) {
    return linear->forward(x).view({B, T, H, D}).permute({0, 2, 1, 3});
  };
  const torch::Tensor scores = torch::matmul(heads(self.query), heads(self.key).transpose(-2, -1));
  return torch::softmax(scores / std::sqrt(static_cast<double>(D)), -1);
}

// The mean attention a query at i gives the key at i + offset, in `head`.
double AttentionAtOffset(const torch::Tensor& probs, int64_t head, int64_t offset) {
  return probs.select(1, head).diagonal(offset, -2, -1).mean().item<double>();
}

TEST(LocalAttentionInitTest, FirstLayerHeadsStartOnTheirNeighbours) {
  EXPECT_EQ(LocalAttentionOffset(0), -1);
  EXPECT_EQ(LocalAttentionOffset(1), 1);
  EXPECT_EQ(LocalAttentionOffset(2), -2);
  EXPECT_EQ(LocalAttentionOffset(3), 2);
  for (const int64_t heads : {2, 4}) {
    torch::manual_seed(3);
    BertConfig c = *PresetConfig("bert-tiny", 1000);
    c.num_attention_heads = heads;
    ASSERT_EQ(protocol::ModelInitializationSizeError(protocol::kModelInitLocalAttention, c.hidden_size,
                                                     c.num_attention_heads),
              "");
    BertForMaskedLM model(c);
    InitBertWeights(model);
    const torch::Tensor ids = torch::randint(5, 1000, {4, 128}, torch::kInt64);
    const torch::Tensor uniform = FirstLayerAttention(model, ids);
    const torch::Tensor words = model->bert->embeddings->word_embeddings->weight.clone();
    const torch::Tensor layer1 = (*model->bert->layers)[1]->as<BertLayer>()->attention->self->query->weight.clone();
    InitLocalAttention(model);
    const torch::Tensor local = FirstLayerAttention(model, ids);
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t s = LocalAttentionOffset(h);
      SCOPED_TRACE("heads " + std::to_string(heads) + ", head " + std::to_string(h));
      // Hugging Face's start: about 1/128 everywhere.
      EXPECT_LT(AttentionAtOffset(uniform, h, s), 0.02);
      // Its own neighbour: over 12 times the uniform share, 4 times any other nearby position.
      const double own = AttentionAtOffset(local, h, s);
      EXPECT_GT(own, 0.1);  // 0.3-0.45 with 2 heads of 64, 0.14-0.18 with 4 of 32
      for (const int64_t other : {-3, -2, -1, 0, 1, 2, 3}) {
        if (other != s) {
          EXPECT_LT(AttentionAtOffset(local, h, other), own / 4) << "offset " << other;
        }
      }
    }
    // Only the positions and layer 0 change: words and later layers are Hugging Face's.
    EXPECT_TRUE(torch::equal(model->bert->embeddings->word_embeddings->weight, words));
    EXPECT_TRUE(torch::equal((*model->bert->layers)[1]->as<BertLayer>()->attention->self->query->weight, layer1));
  }
  EXPECT_EQ(DescribeLocalAttentionInit(*PresetConfig("bert-mini", 1000)),
            "initialization local-attention: layer 0's heads start on the tokens at offsets -1, +1, -2, +2; "
            "position embeddings sinusoidal");
  // Head size 1: refused for local-attention, fine for normal.
  EXPECT_NE(protocol::ModelInitializationSizeError(protocol::kModelInitLocalAttention, 128, 128)
                .find("even head size"),
            std::string::npos);
  EXPECT_EQ(protocol::ModelInitializationSizeError(protocol::kModelInitNormal, 128, 128), "");
}

// The worker takes the two names and refuses any other, naming the key.
TEST(LocalAttentionInitTest, TheWorkerConfigNamesIt) {
  const std::string head = R"({"dataset_dir": "/d", "output_dir": "/o", "model": {"initialization": )";
  EXPECT_EQ(ParsePretrainConfig(head + "\"local-attention\"}}", "c.json").initialization, "local-attention");
  EXPECT_EQ(ParsePretrainConfig(R"({"dataset_dir": "/d", "output_dir": "/o"})", "c.json").initialization,
            "normal");
  try {
    ParsePretrainConfig(head + "\"xavier\"}}", "c.json");
    ADD_FAILURE() << "an unknown initialization was accepted";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.cause(), FailureCause::kSpecError);
    EXPECT_NE(std::string(e.what()).find("c.json: model.initialization: unknown initialization \"xavier\""),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace bert::engine
