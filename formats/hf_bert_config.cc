#include "formats/hf_bert_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <optional>

#include "nlohmann/json.hpp"

namespace bert::formats {
namespace {

using nlohmann::json;

// Reads the keys of one config.json object; the first error wins.
class Keys {
 public:
  Keys(const json& j, std::string_view file) : j_(j), file_(file) {}

  // A required integer in [min, max].
  void Int(const char* key, int64_t min, int64_t max, int64_t* out) {
    if (failed()) return;
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null())
      return Fail(ErrorCode::kMalformed, key, "missing (a BERT config.json names it)");
    if (!it->is_number_integer())
      return Fail(ErrorCode::kMalformed, key, "must be an integer, got " + it->dump());
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)) {
      return Fail(ErrorCode::kMalformed, key,
                  "must be at most " + std::to_string(max) + ", got " + it->dump());
    }
    const int64_t v = it->get<int64_t>();
    if (v < min || v > max) {
      return Fail(ErrorCode::kMalformed, key,
                  "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                      ", got " + it->dump());
    }
    *out = v;
  }
  // An optional number in [min, max) (absent or null: *out is kept).
  void Number(const char* key, double min, double max, double* out) {
    if (failed()) return;
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return;
    if (!it->is_number())
      return Fail(ErrorCode::kMalformed, key, "must be a number, got " + it->dump());
    const double v = it->get<double>();
    if (!(v >= min && v < max)) {
      return Fail(
          ErrorCode::kMalformed, key,
          "must be in [" + json(min).dump() + ", " + json(max).dump() + "), got " + it->dump());
    }
    *out = v;
  }
  // An optional string that, when present, must be one of `allowed` (for the engine).
  void Supported(const char* key, std::initializer_list<std::string_view> allowed,
                 std::string_view why) {
    if (failed()) return;
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return;
    if (!it->is_string())
      return Fail(ErrorCode::kMalformed, key, "must be a string, got " + it->dump());
    const std::string v = it->get<std::string>();
    for (std::string_view a : allowed) {
      if (v == a) return;
    }
    Fail(ErrorCode::kUnsupported, key, "\"" + v + "\" is not supported: " + std::string(why));
  }

  void Fail(ErrorCode code, std::string_view key, const std::string& what) {
    if (failed()) return;
    error_ = Error{code, std::string(file_) + ": " + std::string(key) + ": " + what};
  }
  bool failed() const { return error_.has_value(); }
  const Error& error() const { return *error_; }

 private:
  const json& j_;
  const std::string_view file_;
  std::optional<Error> error_;
};

// model_type "bert", or (files from before model_type) a Bert* architecture.
void CheckModelType(const json& j, Keys& keys) {
  const auto type = j.find("model_type");
  if (type != j.end() && !type->is_null()) {
    if (!type->is_string())
      return keys.Fail(ErrorCode::kMalformed, "model_type",
                       "must be a string, got " + type->dump());
    if (type->get<std::string>() != "bert") {
      return keys.Fail(ErrorCode::kUnsupported, "model_type",
                       "\"" + type->get<std::string>() +
                           "\" is not a BERT model; warm start loads model_type \"bert\" only");
    }
    return;
  }
  const auto arch = j.find("architectures");
  if (arch != j.end() && arch->is_array()) {
    for (const json& a : *arch) {
      if (a.is_string() && a.get<std::string>().rfind("Bert", 0) == 0) return;
    }
  }
  keys.Fail(ErrorCode::kUnsupported, "model_type",
            "missing, and no Bert* class in architectures: not a BERT config.json");
}

}  // namespace

Result<HfBertConfig> ParseHfBertConfig(std::string_view text, std::string_view file_name) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Error{ErrorCode::kMalformed, std::string(file_name) + ": not a JSON object"};
  }
  Keys keys(j, file_name);
  CheckModelType(j, keys);
  keys.Supported("hidden_act", {"gelu"},
                 "the engine's BERT uses the exact (erf) GELU, Hugging Face's \"gelu\"");
  keys.Supported("position_embedding_type", {"absolute"},
                 "the engine's BERT has absolute position embeddings");
  HfBertConfig c;
  // Bounds far above any published BERT, so that a hostile file cannot ask for
  // an allocation the checks downstream would not catch.
  keys.Int("vocab_size", 1, int64_t{1} << 24, &c.vocab_size);
  keys.Int("hidden_size", 1, int64_t{1} << 16, &c.hidden_size);
  keys.Int("num_hidden_layers", 1, 1024, &c.num_hidden_layers);
  keys.Int("num_attention_heads", 1, int64_t{1} << 12, &c.num_attention_heads);
  keys.Int("intermediate_size", 1, int64_t{1} << 18, &c.intermediate_size);
  keys.Int("max_position_embeddings", 1, int64_t{1} << 20, &c.max_position_embeddings);
  keys.Int("type_vocab_size", 1, int64_t{1} << 16, &c.type_vocab_size);
  keys.Number("hidden_dropout_prob", 0, 1, &c.hidden_dropout_prob);
  keys.Number("attention_probs_dropout_prob", 0, 1, &c.attention_probs_dropout_prob);
  keys.Number("layer_norm_eps", 1e-30, 1, &c.layer_norm_eps);
  keys.Number("initializer_range", 0, 1e3, &c.initializer_range);
  if (!keys.failed() && j.contains("pad_token_id") && !j["pad_token_id"].is_null()) {
    keys.Int("pad_token_id", 0, c.vocab_size - 1, &c.pad_token_id);
  }
  if (!keys.failed() && c.hidden_size % c.num_attention_heads != 0) {
    keys.Fail(ErrorCode::kMalformed, "hidden_size",
              std::to_string(c.hidden_size) + " is not a multiple of num_attention_heads (" +
                  std::to_string(c.num_attention_heads) + ")");
  }
  if (keys.failed()) return keys.error();
  return c;
}

Result<HfBertConfig> ReadHfBertConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/" + kHfConfigFile;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return Error{err == ENOENT || err == ENOTDIR ? ErrorCode::kNotFound : ErrorCode::kIoError,
                 path + ": cannot open: " + std::strerror(err), err};
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    return Error{ErrorCode::kIoError, path + ": cannot stat: " + std::strerror(err), err};
  }
  if (!S_ISREG(st.st_mode)) return Error{ErrorCode::kIoError, path + ": not a regular file"};
  if (static_cast<uint64_t>(st.st_size) > kMaxHfConfigBytes) {
    return Error{ErrorCode::kMalformed, path + ": " + std::to_string(st.st_size) +
                                            " bytes, over the limit of " +
                                            std::to_string(kMaxHfConfigBytes)};
  }
  std::string text;
  char buffer[1 << 14];
  while (text.size() <= kMaxHfConfigBytes) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      return Error{ErrorCode::kIoError, path + ": read error: " + std::strerror(err), err};
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  if (text.size() > kMaxHfConfigBytes) {
    return Error{ErrorCode::kMalformed,
                 path + ": over the limit of " + std::to_string(kMaxHfConfigBytes) + " bytes"};
  }
  return ParseHfBertConfig(text, path);
}

}  // namespace bert::formats
