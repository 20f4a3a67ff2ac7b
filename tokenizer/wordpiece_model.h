// The WordPiece model: greedy longest-match-first over a vocabulary, with a
// continuation prefix ("##") on every piece after the first, as Hugging Face's
// models/wordpiece. Immutable after Create(); thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace bert::tokenizer {

class WordPieceModel {
 public:
  // `vocab` lists the tokens in id order. A token listed twice keeps the
  // later id for lookups (as Hugging Face's vocab.txt reader).
  static absl::StatusOr<WordPieceModel> Create(const std::vector<std::string>& vocab,
                                               std::string unk_token, std::string prefix,
                                               size_t max_input_chars_per_word);

  // Calls on_token(id, begin, end) for the pieces of one normalized word,
  // [begin, end) being byte offsets into `word`. A word that is longer than
  // max_input_chars_per_word characters, or that has no match at some
  // position, is one unk token spanning the word; when the vocabulary has no
  // unk token, such a word yields nothing (Hugging Face fails the encoding).
  template <typename OnToken>
  void Tokenize(std::string_view word, OnToken&& on_token) const;

  size_t size() const { return offsets_.size() - 1; }
  std::string_view Token(uint32_t id) const {
    return std::string_view(arena_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  std::optional<uint32_t> Find(std::string_view token) const {
    auto it = by_token_.find(token);
    if (it == by_token_.end()) return std::nullopt;
    return it->second;
  }
  const std::string& unk_token() const { return unk_token_; }
  std::optional<uint32_t> unk_id() const { return unk_id_; }
  const std::string& prefix() const { return prefix_; }
  size_t max_input_chars_per_word() const { return max_chars_; }

  WordPieceModel(WordPieceModel&&) noexcept = default;
  WordPieceModel& operator=(WordPieceModel&&) noexcept = default;

 private:
  WordPieceModel() = default;
  using Map = absl::flat_hash_map<std::string_view, uint32_t>;

  std::string arena_;              // every token's text, back to back (heap: views stay valid)
  std::vector<uint32_t> offsets_;  // token id -> start in arena_; one extra at the end
  Map by_token_;                   // full token -> id
  Map continuation_;               // token without its prefix -> id, for prefixed tokens
  std::string unk_token_;
  std::optional<uint32_t> unk_id_;
  std::string prefix_;
  size_t max_chars_ = 100;
  size_t max_token_bytes_ = 0;         // longest key of by_token_
  size_t max_continuation_bytes_ = 0;  // longest key of continuation_
};

template <typename OnToken>
void WordPieceModel::Tokenize(std::string_view word, OnToken&& on_token) const {
  const size_t n = word.size();
  auto unk = [&] {
    if (unk_id_) on_token(*unk_id_, size_t{0}, n);
  };
  if (n > max_chars_) {  // cheap bound first: a character is at least one byte
    size_t chars = 0;
    for (char ch : word) chars += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    if (chars > max_chars_) return unk();
  }
  // Whole-word hit: the common case.
  if (n <= max_token_bytes_) {
    auto it = by_token_.find(word);
    if (it != by_token_.end()) {
      on_token(it->second, size_t{0}, n);
      return;
    }
  }
  // Pieces are collected first: a failure at any position makes the whole word unk.
  uint32_t ids[128];
  uint32_t ends[128];
  size_t count = 0;
  std::vector<uint32_t> spill_ids, spill_ends;
  size_t start = 0;
  while (start < n) {
    const Map& map = start == 0 ? by_token_ : continuation_;
    size_t limit = start == 0 ? max_token_bytes_ : max_continuation_bytes_;
    size_t end = n - start > limit ? start + limit : n;
    // Step back to a character boundary.
    while (end > start && end < n && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
    bool found = false;
    uint32_t id = 0;
    while (end > start) {
      auto it = map.find(word.substr(start, end - start));
      if (it != map.end()) {
        found = true;
        id = it->second;
        break;
      }
      --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
    }
    if (!found) return unk();
    if (count < 128) {
      ids[count] = id;
      ends[count] = static_cast<uint32_t>(end);
    } else {
      spill_ids.push_back(id);
      spill_ends.push_back(static_cast<uint32_t>(end));
    }
    ++count;
    start = end;
  }
  size_t begin = 0;
  for (size_t k = 0; k < count; ++k) {
    uint32_t id = k < 128 ? ids[k] : spill_ids[k - 128];
    size_t end = k < 128 ? ends[k] : spill_ends[k - 128];
    on_token(id, begin, end);
    begin = end;
  }
}

}  // namespace bert::tokenizer
