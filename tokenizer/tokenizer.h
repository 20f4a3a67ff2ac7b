// A BERT WordPiece tokenizer with Hugging Face `tokenizers` semantics.
//
// Normalizer (BertNormalizer), pre-tokenizer (BertPreTokenizer), model
// (WordPiece) and post-processor (BertProcessing) as Hugging Face runs them
// for bert-base-uncased. Loads and saves Hugging Face's tokenizer.json and
// BERT's vocab.txt. Immutable after loading: every const method is
// thread-safe.
//
// Invalid UTF-8 in input text: each invalid byte is replaced by U+FFFD, which
// the normalizer's clean_text step then drops (what Hugging Face does with
// text that was decoded with replacement). Never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace bert::tokenizer {

// The id of a special token that the vocabulary lacks (possible only for a
// tokenizer.json trained without special tokens).
inline constexpr uint32_t kNoTokenId = 0xFFFFFFFF;

struct SpecialTokenIds {
  uint32_t pad = 0;
  uint32_t unk = 0;
  uint32_t cls = 0;
  uint32_t sep = 0;
  uint32_t mask = 0;
};

struct EncodeOptions {
  bool add_special_tokens = true;  // [CLS] A [SEP] (B [SEP])
  size_t max_length = 0;           // 0 = no truncation; counts the special tokens
  bool with_tokens = false;        // fill Encoding::tokens
  bool with_offsets = false;       // fill Encoding::offsets
};

struct Encoding {
  std::vector<uint32_t> ids;
  std::vector<uint32_t> type_ids;
  std::vector<uint8_t> special_tokens_mask;
  std::vector<uint8_t> attention_mask;
  std::vector<std::string> tokens;                 // when with_tokens
  std::vector<std::pair<size_t, size_t>> offsets;  // byte offsets into the input, when with_offsets
};

struct TokenizerImpl;
struct TokenizerAccess;

class Tokenizer {
 public:
  // `path` is a tokenizer.json, a vocab.txt, or a directory holding either
  // (tokenizer.json preferred). Errors name the file and what is wrong.
  static absl::StatusOr<Tokenizer> Load(const std::string& path);
  // A BERT tokenizer over `vocab` (ids in order); `lowercase` as in
  // bert-base-uncased. The special tokens must be in the vocabulary.
  static absl::StatusOr<Tokenizer> FromVocab(std::vector<std::string> vocab, bool lowercase);

  // Writes tokenizer.json and vocab.txt into `dir` (created if missing), atomically.
  absl::Status Save(const std::string& dir) const;
  std::string ToJson() const;  // tokenizer.json contents

  Encoding Encode(std::string_view text, const EncodeOptions& options = {}) const;
  Encoding EncodePair(std::string_view a, std::string_view b,
                      const EncodeOptions& options = {}) const;
  // Fast path for packing: appends the ids of `text` (with [CLS]/[SEP] when
  // add_special_tokens, truncated to max_length when non-zero) to `out`.
  // Returns how many tokens truncation dropped.
  size_t AppendIds(std::string_view text, bool add_special_tokens, size_t max_length,
                   std::vector<uint32_t>* out) const;

  std::string Decode(std::span<const uint32_t> ids, bool skip_special_tokens = true) const;

  size_t vocab_size() const;
  std::optional<uint32_t> TokenToId(std::string_view token) const;
  std::string_view IdToToken(uint32_t id) const;
  const SpecialTokenIds& special_ids() const;
  bool lowercase() const;
  // SHA-256 of ToJson(): identifies the tokenizer in dataset manifests.
  std::string Fingerprint() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  friend struct TokenizerAccess;  // tokenizer_impl.h: builds a Tokenizer from its parts
  explicit Tokenizer(std::shared_ptr<const TokenizerImpl> impl);
  std::shared_ptr<const TokenizerImpl> impl_;
};

}  // namespace bert::tokenizer
