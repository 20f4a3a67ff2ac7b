#include "tokenizer/wordpiece_model.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace bert::tokenizer {

absl::StatusOr<WordPieceModel> WordPieceModel::Create(const std::vector<std::string>& vocab,
                                                      std::string unk_token, std::string prefix,
                                                      size_t max_input_chars_per_word) {
  if (vocab.empty()) return absl::InvalidArgumentError("WordPiece vocabulary is empty");
  if (vocab.size() >= 0xFFFFFFFFu)
    return absl::InvalidArgumentError("WordPiece vocabulary too large");
  WordPieceModel model;
  size_t total = 0;
  for (const std::string& token : vocab) total += token.size();
  model.arena_.reserve(std::max<size_t>(total, 32));  // on the heap, so views survive moves
  model.offsets_.reserve(vocab.size() + 1);
  for (const std::string& token : vocab) {
    model.offsets_.push_back(static_cast<uint32_t>(model.arena_.size()));
    model.arena_ += token;
  }
  model.offsets_.push_back(static_cast<uint32_t>(model.arena_.size()));
  model.by_token_.reserve(vocab.size());
  for (uint32_t id = 0; id < vocab.size(); ++id) {
    std::string_view token = model.Token(id);
    model.by_token_[token] = id;  // a later duplicate wins
    model.max_token_bytes_ = std::max(model.max_token_bytes_, token.size());
  }
  if (!prefix.empty()) {
    for (const auto& [token, id] : model.by_token_) {
      if (token.size() > prefix.size() && token.substr(0, prefix.size()) == prefix) {
        std::string_view rest = token.substr(prefix.size());
        model.continuation_[rest] = id;
        model.max_continuation_bytes_ = std::max(model.max_continuation_bytes_, rest.size());
      }
    }
  } else {
    model.continuation_ = model.by_token_;
    model.max_continuation_bytes_ = model.max_token_bytes_;
  }
  model.unk_token_ = std::move(unk_token);
  model.unk_id_ = model.Find(model.unk_token_);
  model.prefix_ = std::move(prefix);
  model.max_chars_ = max_input_chars_per_word;
  return model;
}

}  // namespace bert::tokenizer
