#include "protocol/worker_config.h"

#include <algorithm>
#include <concepts>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <vector>

namespace bert::protocol {
namespace {

using nlohmann::json;

// `U` is `T`, const or not: one field list serves ToJson (const) and FromJson.
template <typename U, typename T>
concept ConfigOf = std::same_as<std::remove_const_t<U>, T>;

// --- The schema: each key, once --------------------------------------------
// A visitor gets Field (optional key with a default), Required (must be
// present) and Object (a nested part).

void Fields(auto& v, ConfigOf<WorkerModelConfig> auto& c) {
  v.Field("preset", c.preset);
  v.Field("vocab_size", c.vocab_size);
  v.Field("hidden_size", c.hidden_size);
  v.Field("num_hidden_layers", c.num_hidden_layers);
  v.Field("num_attention_heads", c.num_attention_heads);
  v.Field("intermediate_size", c.intermediate_size);
  v.Field("max_position_embeddings", c.max_position_embeddings);
  v.Field("type_vocab_size", c.type_vocab_size);
  v.Field("hidden_dropout_prob", c.hidden_dropout_prob);
  v.Field("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  v.Field("initialization", c.initialization);
}

void Fields(auto& v, ConfigOf<WorkerTrainingConfig> auto& c) {
  v.Field("max_steps", c.max_steps);
  v.Field("per_device_batch_size", c.per_device_batch_size);
  v.Field("learning_rate", c.learning_rate);
  v.Field("warmup_steps", c.warmup_steps);
  v.Field("warmup_ratio", c.warmup_ratio);
  v.Field("weight_decay", c.weight_decay);
  v.Field("gradient_accumulation_steps", c.gradient_accumulation_steps);
  v.Field("max_grad_norm", c.max_grad_norm);
  v.Field("mlm_probability", c.mlm_probability);
  v.Field("mask_replace_prob", c.mask_replace_prob);
  v.Field("random_replace_prob", c.random_replace_prob);
  v.Field("precision", c.precision);
  v.Field("save_steps", c.save_steps);
  v.Field("save_total_limit", c.save_total_limit);
  v.Field("logging_steps", c.logging_steps);
  v.Field("eval_steps", c.eval_steps);
  v.Field("seed", c.seed);
  v.Field("eval_max_blocks", c.eval_max_blocks);
  v.Field("peak_flops", c.peak_flops);
}

void Fields(auto& v, ConfigOf<WorkerDistributedConfig> auto& c) {
  v.Field("backend", c.backend);
  v.Field("rank", c.rank);
  v.Field("world_size", c.world_size);
  v.Field("local_rank", c.local_rank);
  v.Field("master_addr", c.master_addr);
  v.Field("master_port", c.master_port);
  v.Field("local_addr", c.local_addr);
  v.Field("timeout_seconds", c.timeout_seconds);
}

void Fields(auto& v, ConfigOf<WorkerPretrainConfig> auto& c) {
  v.Required("dataset_dir", c.dataset_dir);
  v.Required("output_dir", c.output_dir);
  v.Object("model", c.model);
  v.Object("training", c.training);
  v.Field("device", c.device);
  v.Field("threads", c.threads);
  v.Object("distributed", c.distributed);
  v.Field("init_from", c.init_from);
}

void Fields(auto& v, ConfigOf<WorkerExportConfig> auto& c) {
  v.Required("checkpoint_dir", c.checkpoint_dir);
  v.Required("tokenizer_dir", c.tokenizer_dir);
  v.Required("output_dir", c.output_dir);
}

// --- Writing -----------------------------------------------------------------

class Writer {
 public:
  explicit Writer(json* out) : out_(*out) {}
  template <typename T>
  void Field(const char* key, const T& value) {
    out_[key] = value;
  }
  template <typename T>
  void Field(const char* key, const std::optional<T>& value) {
    if (value) out_[key] = *value;
  }
  void Required(const char* key, const std::string& value) { out_[key] = value; }
  template <typename Part>
  void Object(const char* key, const Part& part) {
    json object = json::object();
    Writer writer(&object);
    Fields(writer, part);
    out_[key] = std::move(object);
  }

 private:
  json& out_;
};

template <typename Config>
json Write(const Config& config) {
  json out = json::object();
  Writer writer(&out);
  Fields(writer, config);
  return out;
}

// --- Reading -----------------------------------------------------------------

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Reads one JSON object against a field list. The first error wins and is kept
// in `*error`; later calls do nothing. Done() then refuses keys no field named.
class Reader {
 public:
  Reader(const json& object, std::string path, std::string_view file_name, std::string* error)
      : object_(object), path_(std::move(path)), file_name_(file_name), error_(*error) {}

  template <typename T>
  void Field(const char* key, T& out) {
    const json* value = Find(key);
    if (value != nullptr) Convert(key, *value, &out);
  }
  template <typename T>
  void Field(const char* key, std::optional<T>& out) {
    const json* value = Find(key);
    if (value == nullptr) return;
    T converted{};
    if (Convert(key, *value, &converted)) out = converted;
  }
  void Required(const char* key, std::string& out) {
    const json* value = Find(key);
    if (value == nullptr) {
      Fail(key, "missing (required)");
    } else {
      Convert(key, *value, &out);
    }
  }
  template <typename Part>
  void Object(const char* key, Part& part) {
    const json* value = Find(key);
    if (value == nullptr) return;
    if (!value->is_object()) {
      Fail(key, "must be an object");
      return;
    }
    Reader reader(*value, path_ + key + ".", file_name_, &error_);
    Fields(reader, part);
    reader.Done();
  }

  // Checks the object itself and that every key in it is a known one.
  void Done() {
    if (!error_.empty()) return;
    for (const auto& [key, value] : object_.items()) {
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      std::string what = "unknown key";
      const std::string* nearest = nullptr;
      size_t best = 3;  // suggest only a near miss
      for (const std::string& k : known_) {
        const size_t d = EditDistance(key, k);
        if (d < best) best = d, nearest = &k;
      }
      if (nearest != nullptr) what += " (did you mean \"" + path_ + *nearest + "\"?)";
      Fail(key, what);
      return;
    }
  }

 private:
  // The value of `key`, or null when absent or JSON null; records the key as known.
  const json* Find(const char* key) {
    known_.emplace_back(key);
    if (!error_.empty()) return nullptr;
    const auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void Fail(std::string_view key, std::string_view what) {
    if (!error_.empty()) return;
    error_ = file_name_.empty() ? "" : std::string(file_name_) + ": ";
    error_ += path_;
    error_ += key;
    error_ += ": ";
    error_ += what;
  }

  bool Convert(const char* key, const json& v, std::string* out) {
    if (!v.is_string()) return Fail(key, "must be a string"), false;
    *out = v.get<std::string>();
    return true;
  }
  bool Convert(const char* key, const json& v, double* out) {
    if (!v.is_number()) return Fail(key, "must be a number"), false;
    *out = v.get<double>();
    return true;
  }
  bool Convert(const char* key, const json& v, int64_t* out) {
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() &&
         v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      return Fail(key, "must be an integer"), false;
    }
    *out = v.get<int64_t>();
    return true;
  }
  bool Convert(const char* key, const json& v, uint64_t* out) {
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
      return Fail(key, "must be a non-negative integer"), false;
    }
    *out = v.get<uint64_t>();
    return true;
  }
  bool Convert(const char* key, const json& v, int* out) {
    int64_t wide = 0;
    if (!Convert(key, v, &wide)) return false;
    if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
      return Fail(key, "is out of range"), false;
    }
    *out = static_cast<int>(wide);
    return true;
  }

  const json& object_;
  const std::string path_;  // "" at the top, else "training." etc.
  const std::string_view file_name_;
  std::string& error_;
  std::vector<std::string> known_;
};

template <typename Config>
bool Read(const json& in, std::string_view file_name, Config* out, std::string* error) {
  std::string failure;
  if (!in.is_object()) {
    failure = std::string(file_name) + ": must be a JSON object";
  } else {
    Config config;
    Reader reader(in, "", file_name, &failure);
    Fields(reader, config);
    reader.Done();
    if (failure.empty()) *out = std::move(config);
  }
  if (failure.empty()) return true;
  if (error != nullptr) *error = std::move(failure);
  return false;
}

template <typename Config>
bool Parse(std::string_view text, std::string_view file_name, Config* out, std::string* error) {
  json in;
  try {
    in = json::parse(text);
  } catch (const json::exception& e) {  // nlohmann's only way to say where the syntax breaks
    if (error != nullptr) *error = std::string(file_name) + ": invalid JSON: " + e.what();
    return false;
  }
  return Read(in, file_name, out, error);
}

}  // namespace

std::string ResolvedBackend(const WorkerDistributedConfig& distributed, std::string_view device) {
  if (!distributed.backend.empty()) return distributed.backend;
  if (device == "cuda") return "nccl";
  if (device == "hpu") return "hccl";
  return "gloo";
}

json ToJson(const WorkerPretrainConfig& config) { return Write(config); }
json ToJson(const WorkerExportConfig& config) { return Write(config); }

bool FromJson(const json& in, std::string_view file_name, WorkerPretrainConfig* out,
              std::string* error) {
  return Read(in, file_name, out, error);
}
bool FromJson(const json& in, std::string_view file_name, WorkerExportConfig* out,
              std::string* error) {
  return Read(in, file_name, out, error);
}

bool ParseWorkerConfig(std::string_view text, std::string_view file_name, WorkerPretrainConfig* out,
                       std::string* error) {
  return Parse(text, file_name, out, error);
}
bool ParseWorkerConfig(std::string_view text, std::string_view file_name, WorkerExportConfig* out,
                       std::string* error) {
  return Parse(text, file_name, out, error);
}

}  // namespace bert::protocol
