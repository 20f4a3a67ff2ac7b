#include "engine/worker_config.h"

#include <nlohmann/json.hpp>

#include "engine/engine_error.h"

namespace bert::engine {
namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& object, std::string where) : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) Fail("", "must be an object");
  }
  [[noreturn]] void Fail(const std::string& key, const std::string& what) const {
    throw EngineError(FailureCause::kSpecError, where_ + (key.empty() ? "" : "." + key) + ": " + what);
  }
  template <typename T>
  void Get(const char* key, T* out, bool required = false) const {
    if (!object_.contains(key) || object_[key].is_null()) {
      if (required) Fail(key, "missing");
      return;
    }
    const json& v = object_[key];
    if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) Fail(key, "must be a string");
    } else if constexpr (std::is_same_v<T, double>) {
      if (!v.is_number()) Fail(key, "must be a number");
    } else {
      if (!v.is_number_integer()) Fail(key, "must be an integer");
    }
    *out = v.get<T>();
  }
  Reader Child(const char* key) const {
    static const json kEmpty = json::object();
    return Reader(object_.contains(key) ? object_[key] : kEmpty, where_ + "." + key);
  }

 private:
  const json& object_;
  std::string where_;
};

json Parse(const std::string& text, const std::string& file_name) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw EngineError(FailureCause::kSpecError, file_name + ": invalid JSON: " + e.what());
  }
}

}  // namespace

PretrainOptions ParsePretrainConfig(const std::string& text, const std::string& file_name) {
  const json root = Parse(text, file_name);
  const Reader r(root, file_name);
  PretrainOptions o;
  r.Get("dataset_dir", &o.dataset_dir, true);
  r.Get("output_dir", &o.output_dir, true);
  r.Get("device", &o.device);
  int64_t threads = 0;
  r.Get("threads", &threads);
  o.threads = static_cast<int>(threads);

  const Reader m = r.Child("model");
  BertConfig& c = o.model;
  std::string preset;
  m.Get("preset", &preset);
  c.vocab_size = 0;  // from the dataset unless given
  if (!preset.empty()) {
    const auto p = PresetConfig(preset, 0);
    if (!p) m.Fail("preset", "unknown preset \"" + preset + "\"");
    c = *p;
  }
  m.Get("vocab_size", &c.vocab_size);
  m.Get("hidden_size", &c.hidden_size);
  m.Get("num_hidden_layers", &c.num_hidden_layers);
  m.Get("num_attention_heads", &c.num_attention_heads);
  m.Get("intermediate_size", &c.intermediate_size);
  m.Get("max_position_embeddings", &c.max_position_embeddings);
  m.Get("type_vocab_size", &c.type_vocab_size);
  m.Get("hidden_dropout_prob", &c.hidden_dropout_prob);
  m.Get("attention_probs_dropout_prob", &c.attention_probs_dropout_prob);

  const Reader t = r.Child("training");
  TrainingOptions& x = o.training;
  t.Get("max_steps", &x.max_steps);
  t.Get("per_device_batch_size", &x.per_device_batch_size);
  t.Get("learning_rate", &x.learning_rate);
  t.Get("warmup_steps", &x.warmup_steps);
  t.Get("warmup_ratio", &x.warmup_ratio);
  t.Get("weight_decay", &x.weight_decay);
  t.Get("gradient_accumulation_steps", &x.gradient_accumulation_steps);
  t.Get("max_grad_norm", &x.max_grad_norm);
  t.Get("mlm_probability", &x.mlm_probability);
  t.Get("precision", &x.precision);
  t.Get("save_steps", &x.save_steps);
  t.Get("save_total_limit", &x.save_total_limit);
  t.Get("logging_steps", &x.logging_steps);
  t.Get("eval_steps", &x.eval_steps);
  t.Get("seed", &x.seed);
  t.Get("eval_max_blocks", &x.eval_max_blocks);
  t.Get("peak_flops", &x.peak_flops);

  const Reader d = r.Child("distributed");
  DistributedOptions& w = o.distributed;
  d.Get("backend", &w.backend);
  d.Get("rank", &w.rank);
  d.Get("world_size", &w.world_size);
  d.Get("local_rank", &w.local_rank);
  d.Get("master_addr", &w.master_addr);
  d.Get("master_port", &w.master_port);
  d.Get("timeout_seconds", &w.timeout_seconds);
  if (o.device == "cuda" && !root.contains("distributed")) w.backend = "nccl";
  if (root.contains("distributed") && !root["distributed"].contains("backend")) {
    w.backend = o.device == "cuda" ? "nccl" : "gloo";
  }
  return o;
}

ExportOptions ParseExportConfig(const std::string& text, const std::string& file_name) {
  const json root = Parse(text, file_name);
  const Reader r(root, file_name);
  ExportOptions o;
  r.Get("checkpoint_dir", &o.checkpoint_dir, true);
  r.Get("tokenizer_dir", &o.tokenizer_dir, true);
  r.Get("output_dir", &o.output_dir, true);
  return o;
}

}  // namespace bert::engine
