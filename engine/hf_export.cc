#include "engine/hf_export.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/bert_model.h"
#include "engine/checkpoint.h"
#include "engine/engine_error.h"
#include "engine/safetensors.h"

namespace bert::engine {
namespace fs = std::filesystem;
namespace {

std::string ReadText(const std::string& path, FailureCause cause) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EngineError(cause, path + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// strerror(err), said plainly when the disk (or the file size limit) is full.
std::string ErrnoText(int err) {
  const bool full = err == ENOSPC || err == EFBIG || err == EDQUOT;
  return std::string(full ? "disk full (" : "") + std::strerror(err) + (full ? ")" : "");
}

// Writes `text` to dir/name through a temporary file, fsync and rename; a
// failed write removes the temporary file.
void WriteFileAtomically(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name, tmp = dir + "/." + name + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw EngineError(FailureCause::kInternal, tmp + ": cannot create: " + ErrnoText(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw EngineError(FailureCause::kInternal, tmp + ": write failed: " + ErrnoText(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw EngineError(FailureCause::kInternal, tmp + ": fsync/close failed: " + ErrnoText(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw EngineError(FailureCause::kInternal, path + ": rename failed: " + std::strerror(errno));
  }
}

// The checkpoint to export: `dir` itself when it has a manifest, else the newest
// valid one under dir/checkpoints or dir.
std::string ResolveCheckpoint(const std::string& dir) {
  if (fs::exists(dir + "/manifest.json")) {
    std::string why;
    if (!VerifyCheckpoint(dir, &why)) throw EngineError(FailureCause::kArtifactCorrupt, dir + ": " + why);
    return dir;
  }
  for (const std::string& parent : {dir + "/checkpoints", dir}) {
    std::vector<std::string> skipped;
    if (auto found = NewestValidCheckpoint(parent, &skipped)) return *found;
  }
  throw EngineError(FailureCause::kArtifactCorrupt, dir + ": no checkpoint that verifies");
}

std::string TokenById(const nlohmann::json& tokenizer, const std::string& fallback) {
  // Prefer the token as the tokenizer names it among its added (special) tokens.
  if (tokenizer.contains("added_tokens")) {
    for (const auto& t : tokenizer["added_tokens"]) {
      if (t.value("content", "") == fallback) return fallback;
    }
  }
  return fallback;
}

}  // namespace

ExportResult ExportHuggingFace(const ExportOptions& options) {
  if (options.output_dir.empty()) throw EngineError(FailureCause::kSpecError, "export: output_dir is empty");
  ExportResult result;
  result.checkpoint = ResolveCheckpoint(options.checkpoint_dir);
  const CheckpointData ckpt = ReadCheckpoint(result.checkpoint);
  result.step = ckpt.step;
  const BertConfig& c = ckpt.config;

  const std::string tokenizer_json = ReadText(options.tokenizer_dir + "/tokenizer.json", FailureCause::kDataError);
  const std::string vocab = ReadText(options.tokenizer_dir + "/vocab.txt", FailureCause::kDataError);
  nlohmann::json tokenizer;
  try {
    tokenizer = nlohmann::json::parse(tokenizer_json);
  } catch (const nlohmann::json::exception& e) {
    throw EngineError(FailureCause::kDataError, options.tokenizer_dir + "/tokenizer.json: " + e.what());
  }
  bool lowercase = true;
  if (tokenizer.contains("normalizer") && tokenizer["normalizer"].is_object()) {
    lowercase = tokenizer["normalizer"].value("lowercase", true);
  }
  const int64_t vocab_lines = std::count(vocab.begin(), vocab.end(), '\n') + (vocab.empty() || vocab.back() == '\n' ? 0 : 1);
  if (vocab_lines > c.vocab_size) {
    throw EngineError(FailureCause::kDataError, options.tokenizer_dir + "/vocab.txt has " + std::to_string(vocab_lines) +
                                                    " tokens, more than the model's vocab_size " + std::to_string(c.vocab_size));
  }

  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) throw EngineError(FailureCause::kInternal, options.output_dir + ": cannot create: " + ec.message());

  nlohmann::ordered_json config = {
      {"architectures", {"BertForMaskedLM"}},
      {"attention_probs_dropout_prob", c.attention_probs_dropout_prob},
      {"classifier_dropout", nullptr},
      {"hidden_act", "gelu"},
      {"hidden_dropout_prob", c.hidden_dropout_prob},
      {"hidden_size", c.hidden_size},
      {"initializer_range", c.initializer_range},
      {"intermediate_size", c.intermediate_size},
      {"layer_norm_eps", c.layer_norm_eps},
      {"max_position_embeddings", c.max_position_embeddings},
      {"model_type", "bert"},
      {"num_attention_heads", c.num_attention_heads},
      {"num_hidden_layers", c.num_hidden_layers},
      {"pad_token_id", c.pad_token_id},
      {"position_embedding_type", "absolute"},
      {"torch_dtype", "float32"},
      {"type_vocab_size", c.type_vocab_size},
      {"use_cache", true},
      {"vocab_size", c.vocab_size}};
  const std::string unk = TokenById(tokenizer, "[UNK]"), sep = TokenById(tokenizer, "[SEP]"),
                    pad = TokenById(tokenizer, "[PAD]"), cls = TokenById(tokenizer, "[CLS]"),
                    mask = TokenById(tokenizer, "[MASK]");
  nlohmann::ordered_json special = {
      {"cls_token", cls}, {"mask_token", mask}, {"pad_token", pad}, {"sep_token", sep}, {"unk_token", unk}};
  nlohmann::ordered_json tokenizer_config = {
      {"clean_up_tokenization_spaces", true}, {"cls_token", cls},       {"do_lower_case", lowercase},
      {"mask_token", mask},                   {"model_max_length", c.max_position_embeddings},
      {"pad_token", pad},                     {"sep_token", sep},        {"strip_accents", nullptr},
      {"tokenize_chinese_chars", true},       {"tokenizer_class", "BertTokenizer"},
      {"unk_token", unk}};

  // The weights last but one and config.json last: a reader that sees config.json sees the rest.
  WriteFileAtomically(options.output_dir, "vocab.txt", vocab);
  WriteFileAtomically(options.output_dir, "tokenizer.json", tokenizer_json);
  WriteFileAtomically(options.output_dir, "tokenizer_config.json", tokenizer_config.dump(2) + "\n");
  WriteFileAtomically(options.output_dir, "special_tokens_map.json", special.dump(2) + "\n");
  WriteFileAtomically(options.output_dir, "model.safetensors", EncodeSafetensors(ckpt.model));
  WriteFileAtomically(options.output_dir, "config.json", config.dump(2) + "\n");
  const int dir_fd = ::open(options.output_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return result;
}

}  // namespace bert::engine
