// The worker CONFIG.json schema (protocol/worker_config.h): round trips,
// strictness (unknown keys, wrong types, missing keys, each named by its full
// path and the file), and the defaults (the article's settings).
#include "protocol/worker_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace bert::protocol {
namespace {

using nlohmann::json;
using testing::HasSubstr;

// A config with every field away from its default.
WorkerPretrainConfig Everything() {
  WorkerPretrainConfig c;
  c.dataset_dir = "/artifacts/job/dataset";
  c.output_dir = "/artifacts/job/pretrain";
  c.model.preset = "bert-tiny";
  c.model.vocab_size = 1000;
  c.model.hidden_size = 64;
  c.model.num_hidden_layers = 2;
  c.model.num_attention_heads = 2;
  c.model.intermediate_size = 256;
  c.model.max_position_embeddings = 128;
  c.model.type_vocab_size = 1;
  c.model.hidden_dropout_prob = 0.0;
  c.model.attention_probs_dropout_prob = 0.05;
  c.model.initialization = "local-attention";
  WorkerTrainingConfig& t = c.training;
  t.max_steps = 7;
  t.per_device_batch_size = 3;
  t.learning_rate = 1e-3;
  t.warmup_steps = 2;
  t.warmup_ratio = 0.1;
  t.weight_decay = 0.01;
  t.gradient_accumulation_steps = 4;
  t.max_grad_norm = 0.5;
  t.mlm_probability = 0.2;
  t.precision = "bf16";
  t.save_steps = 3;
  t.save_total_limit = 2;
  t.logging_steps = 1;
  t.eval_steps = 5;
  t.seed = 18446744073709551615ull;  // the largest uint64 survives
  t.eval_max_blocks = 9;
  t.peak_flops = 1e11;
  c.device = "cuda";
  c.threads = 3;
  WorkerDistributedConfig& d = c.distributed;
  d.backend = "nccl";
  d.rank = 3;
  d.world_size = 8;
  d.local_rank = 1;
  d.master_addr = "10.0.0.1";
  d.master_port = 29600;
  d.local_addr = "10.0.0.2";
  d.timeout_seconds = 60;
  c.init_from = "/models/bert-base-uncased";
  return c;
}

// FromJson's error on `j`, or "" when it parses.
std::string PretrainError(const json& j) {
  WorkerPretrainConfig c;
  std::string error;
  if (FromJson(j, "pretrain-config.json", &c, &error)) return "";
  EXPECT_FALSE(error.empty());
  return error;
}

json Minimal() { return {{"dataset_dir", "/d"}, {"output_dir", "/o"}}; }

TEST(WorkerConfigTest, PretrainRoundTripsThroughJsonAndText) {
  const WorkerPretrainConfig written = Everything();
  WorkerPretrainConfig read;
  std::string error;
  ASSERT_TRUE(FromJson(ToJson(written), "f.json", &read, &error)) << error;
  EXPECT_EQ(read, written);

  WorkerPretrainConfig from_text;
  ASSERT_TRUE(ParseWorkerConfig(ToJson(written).dump(2), "f.json", &from_text, &error)) << error;
  EXPECT_EQ(from_text, written);
}

TEST(WorkerConfigTest, DefaultsRoundTripAndUnsetModelSizesStayUnset) {
  WorkerPretrainConfig written;
  written.dataset_dir = "/d";
  written.output_dir = "/o";
  const json j = ToJson(written);
  EXPECT_TRUE(j["model"].empty()) << j.dump();  // absent sizes: the preset's
  EXPECT_EQ(j["training"]["learning_rate"], 5e-5);
  WorkerPretrainConfig read;
  std::string error;
  ASSERT_TRUE(FromJson(j, "f.json", &read, &error)) << error;
  EXPECT_EQ(read, written);
}

TEST(WorkerConfigTest, ExportRoundTripsAndRequiresEveryKey) {
  const WorkerExportConfig written{"/ckpt/checkpoint-500", "/tok", "/model"};
  WorkerExportConfig read;
  std::string error;
  ASSERT_TRUE(FromJson(ToJson(written), "export-config.json", &read, &error)) << error;
  EXPECT_EQ(read, written);

  json j = ToJson(written);
  j.erase("tokenizer_dir");
  EXPECT_FALSE(FromJson(j, "export-config.json", &read, &error));
  EXPECT_EQ(error, "export-config.json: tokenizer_dir: missing (required)");
}

TEST(WorkerConfigTest, AbsentKeysTakeTheArticlesDefaults) {
  WorkerPretrainConfig c;
  std::string error;
  ASSERT_TRUE(FromJson(Minimal(), "f.json", &c, &error)) << error;
  // The article's run (docs/job-spec.md; spec/spec_defaults.cc fills the same).
  const WorkerTrainingConfig& t = c.training;
  EXPECT_EQ(t.max_steps, 100000);
  EXPECT_EQ(t.per_device_batch_size, 32);
  EXPECT_DOUBLE_EQ(t.learning_rate, 5e-5);
  EXPECT_EQ(t.warmup_steps, 0);
  EXPECT_DOUBLE_EQ(t.warmup_ratio, 0.0);
  EXPECT_DOUBLE_EQ(t.weight_decay, 0.0);
  EXPECT_EQ(t.gradient_accumulation_steps, 1);
  EXPECT_DOUBLE_EQ(t.max_grad_norm, 1.0);
  EXPECT_DOUBLE_EQ(t.mlm_probability, 0.15);
  EXPECT_EQ(t.precision, "fp32");
  EXPECT_EQ(t.save_steps, 500);
  EXPECT_EQ(t.save_total_limit, 0);
  EXPECT_EQ(t.logging_steps, 50);
  EXPECT_EQ(t.eval_steps, 500);
  EXPECT_EQ(t.seed, 42u);
  EXPECT_EQ(t.eval_max_blocks, 0);
  EXPECT_DOUBLE_EQ(t.peak_flops, 0.0);
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.threads, 0);
  EXPECT_EQ(c.model, WorkerModelConfig{});
  const WorkerDistributedConfig& d = c.distributed;
  EXPECT_EQ(d.backend, "");
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.world_size, 1);
  EXPECT_EQ(d.local_rank, 0);
  EXPECT_EQ(d.master_addr, "127.0.0.1");
  EXPECT_EQ(d.master_port, 29500);
  EXPECT_EQ(d.local_addr, "");
  EXPECT_EQ(d.timeout_seconds, 300);
}

TEST(WorkerConfigTest, NullIsAbsent) {
  json j = Minimal();
  j["threads"] = nullptr;
  j["training"] = {{"learning_rate", nullptr}};
  WorkerPretrainConfig c;
  std::string error;
  ASSERT_TRUE(FromJson(j, "f.json", &c, &error)) << error;
  EXPECT_DOUBLE_EQ(c.training.learning_rate, 5e-5);
}

TEST(WorkerConfigTest, MisspeltKeysAreRefusedWithTheirFullPath) {
  json top = Minimal();
  top["thread"] = 2;
  EXPECT_EQ(PretrainError(top),
            "pretrain-config.json: thread: unknown key (did you mean \"threads\"?)");

  json nested = Minimal();
  nested["training"] = {{"learning_rat", 1e-4}};
  EXPECT_THAT(PretrainError(nested),
              testing::StartsWith("pretrain-config.json: training.learning_rat: unknown key"));
  EXPECT_THAT(PretrainError(nested), HasSubstr("did you mean \"training.learning_rate\"?"));

  json model = Minimal();
  model["model"] = {{"hidden_size", 64}, {"num_layers", 2}};
  EXPECT_EQ(PretrainError(model), "pretrain-config.json: model.num_layers: unknown key");

  json distributed = Minimal();
  distributed["distributed"] = {{"rank", 1}, {"wrold_size", 2}};
  EXPECT_THAT(PretrainError(distributed),
              testing::StartsWith("pretrain-config.json: distributed.wrold_size: unknown key"));

  WorkerExportConfig e;
  std::string error;
  EXPECT_FALSE(FromJson(json{{"checkpoint_dir", "/c"},
                             {"tokenizer_dir", "/t"},
                             {"output_dir", "/o"},
                             {"overwrite", true}},
                        "export-config.json", &e, &error));
  EXPECT_EQ(error, "export-config.json: overwrite: unknown key");
}

TEST(WorkerConfigTest, WrongTypesAreRefusedNamingTheKey) {
  json steps = Minimal();
  steps["training"] = {{"max_steps", "many"}};
  EXPECT_EQ(PretrainError(steps), "pretrain-config.json: training.max_steps: must be an integer");

  json fraction = Minimal();
  fraction["training"] = {{"max_steps", 2.5}};
  EXPECT_EQ(PretrainError(fraction),
            "pretrain-config.json: training.max_steps: must be an integer");

  json lr = Minimal();
  lr["training"] = {{"learning_rate", "5e-5"}};
  EXPECT_EQ(PretrainError(lr), "pretrain-config.json: training.learning_rate: must be a number");

  json seed = Minimal();
  seed["training"] = {{"seed", -1}};
  EXPECT_EQ(PretrainError(seed),
            "pretrain-config.json: training.seed: must be a non-negative integer");

  json device = Minimal();
  device["device"] = 0;
  EXPECT_EQ(PretrainError(device), "pretrain-config.json: device: must be a string");

  json model = Minimal();
  model["model"] = {{"hidden_size", true}};
  EXPECT_EQ(PretrainError(model), "pretrain-config.json: model.hidden_size: must be an integer");

  json part = Minimal();
  part["distributed"] = json::array();
  EXPECT_EQ(PretrainError(part), "pretrain-config.json: distributed: must be an object");

  json threads = Minimal();
  threads["threads"] = int64_t{1} << 40;
  EXPECT_EQ(PretrainError(threads), "pretrain-config.json: threads: is out of range");
}

TEST(WorkerConfigTest, MissingRequiredKeysAndBadTextAreRefused) {
  EXPECT_EQ(PretrainError(json{{"output_dir", "/o"}}),
            "pretrain-config.json: dataset_dir: missing (required)");
  EXPECT_EQ(PretrainError(json::array()), "pretrain-config.json: must be a JSON object");

  WorkerPretrainConfig c;
  std::string error;
  EXPECT_FALSE(ParseWorkerConfig("{\"dataset_dir\": ", "/x/pretrain-config.json", &c, &error));
  EXPECT_THAT(error, testing::StartsWith("/x/pretrain-config.json: invalid JSON"));
}

TEST(WorkerConfigTest, AFailedReadLeavesTheOutputAlone) {
  WorkerPretrainConfig c = Everything();
  json j = Minimal();
  j["training"] = {{"max_steps", 3}, {"bogus", 1}};
  std::string error;
  EXPECT_FALSE(FromJson(j, "f.json", &c, &error));
  EXPECT_EQ(c, Everything());
}

TEST(WorkerConfigTest, BackendFollowsTheDeviceWhenUnset) {
  WorkerDistributedConfig d;
  EXPECT_EQ(ResolvedBackend(d, "cpu"), "gloo");
  EXPECT_EQ(ResolvedBackend(d, "cuda"), "nccl");
  EXPECT_EQ(ResolvedBackend(d, "hpu"), "hccl");
  d.backend = "gloo";
  EXPECT_EQ(ResolvedBackend(d, "cuda"), "gloo");  // an explicit choice stands
  d.backend = "hccl";
  EXPECT_EQ(ResolvedBackend(d, "hpu"), "hccl");
}

TEST(WorkerConfigTest, InitFromIsOptionalAndAString) {
  WorkerPretrainConfig read;
  std::string error;
  ASSERT_TRUE(FromJson(Minimal(), "f.json", &read, &error)) << error;
  EXPECT_EQ(read.init_from, "");  // absent: no warm start
  json j = Minimal();
  j["init_from"] = "/models/m";
  ASSERT_TRUE(FromJson(j, "f.json", &read, &error)) << error;
  EXPECT_EQ(read.init_from, "/models/m");
  j["init_from"] = 3;
  EXPECT_EQ(PretrainError(j), "pretrain-config.json: init_from: must be a string");
  json misspelt = Minimal();
  misspelt["init_frm"] = "/models/m";
  EXPECT_EQ(PretrainError(misspelt), "pretrain-config.json: init_frm: unknown key (did you mean \"init_from\"?)");
}

}  // namespace
}  // namespace bert::protocol
