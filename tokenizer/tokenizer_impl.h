// Internal: the state behind bert::tokenizer::Tokenizer and the functions
// that read and write it as tokenizer.json. Immutable once built.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/bert_normalizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/word_splitter.h"
#include "tokenizer/wordpiece_model.h"

namespace bert::tokenizer {

// A token that is matched in the raw text before normalization (Hugging
// Face's added tokens; for BERT the special tokens, "normalized": false).
struct AddedToken {
  std::string content;
  uint32_t id = 0;
  bool special = true;
};

// One element of a post-processing template: a special token or a sequence.
struct TemplatePiece {
  int sequence = -1;          // 0 = A, 1 = B, -1 = special token
  std::vector<uint32_t> ids;  // the special token's ids
  std::string name;           // the special token's name ("[CLS]")
  uint32_t type_id = 0;
};

struct PostProcessor {
  bool enabled = false;  // "post_processor": null -> add_special_tokens adds nothing
  std::vector<TemplatePiece> single;
  std::vector<TemplatePiece> pair;
  size_t SpecialCount(bool is_pair) const;
};

struct TokenizerImpl {
  TokenizerImpl(BertNormalizerOptions normalizer, WordPieceModel wordpiece)
      : splitter(normalizer), model(std::move(wordpiece)) {}

  WordSplitter splitter;
  WordPieceModel model;
  std::vector<AddedToken> added_tokens;  // longest first, for leftmost-longest matching
  PostProcessor post;
  SpecialTokenIds special_ids;
  std::vector<uint8_t> is_special;  // per id: an added token with special = true
  nlohmann::json decoder;           // kept as read, written back (keys sorted)
  std::string json;                 // ToJson(), computed once
  std::string fingerprint;          // SHA-256 of json
};

// The BERT template: [CLS] A [SEP] and [CLS] A [SEP] B [SEP].
PostProcessor BertPostProcessor(std::string_view cls, uint32_t cls_id, std::string_view sep,
                                uint32_t sep_id);

// Fills special_ids, is_special, json and fingerprint once everything else is set.
void FinishImpl(TokenizerImpl& impl);

// Builds the Tokenizer around `impl` (FinishImpl first).
struct TokenizerAccess {
  static Tokenizer Make(std::shared_ptr<TokenizerImpl> impl);
};

// tokenizer.json <-> TokenizerImpl. `source` names the file in errors.
absl::StatusOr<std::shared_ptr<TokenizerImpl>> ParseTokenizerJson(std::string_view json,
                                                                  const std::string& source);
std::string SerializeTokenizerJson(const TokenizerImpl& impl);

}  // namespace bert::tokenizer
