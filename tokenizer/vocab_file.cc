#include "tokenizer/vocab_file.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace bert::tokenizer {

absl::StatusOr<std::vector<std::string>> ParseVocabTxt(std::string_view contents,
                                                       const std::string& source) {
  std::vector<std::string> vocab;
  size_t line = 0;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view token = contents.substr(pos, end - pos);
    ++line;
    while (!token.empty() &&
           (token.back() == ' ' || token.back() == '\t' || token.back() == '\r')) {
      token.remove_suffix(1);
    }
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": empty token"));
    }
    vocab.emplace_back(token);
    pos = end + 1;
  }
  if (vocab.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no tokens"));
  return vocab;
}

absl::StatusOr<std::string> ReadTokenizerFile(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (!std::filesystem::is_regular_file(st)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::InternalError(absl::StrCat(path, ": cannot stat: ", ec.message()));
  if (size > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", size, " bytes, over the limit of ",
                                                   max_bytes, " for a tokenizer file"));
  }
  BERT_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  // The file may have grown since the stat.
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": over the limit of ", max_bytes, " bytes for a tokenizer file"));
  }
  return text;
}

absl::StatusOr<bool> LowercaseFromConfig(const std::string& dir) {
  std::filesystem::path config =
      std::filesystem::path(dir.empty() ? "." : dir) / "tokenizer_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(config, ec)) return true;
  BERT_ASSIGN_OR_RETURN(std::string text, ReadTokenizerFile(config.string(), 1 << 20));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(config.string(), ": not a JSON object"));
  }
  auto it = json.find("do_lower_case");
  if (it == json.end()) return true;
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.string(), ": do_lower_case is not a boolean"));
  }
  return it->get<bool>();
}

}  // namespace bert::tokenizer
