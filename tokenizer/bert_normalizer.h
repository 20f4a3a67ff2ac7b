// BertNormalizer's options, as Hugging Face's tokenizer.json spells them.
#pragma once

#include <optional>

namespace bert::tokenizer {

struct BertNormalizerOptions {
  bool clean_text = true;             // drop controls, map whitespace to ' '
  bool handle_chinese_chars = true;   // spaces around CJK ideographs
  std::optional<bool> strip_accents;  // NFD then drop Mn; unset: follows lowercase
  bool lowercase = true;

  bool StripAccents() const { return strip_accents.value_or(lowercase); }
  // A tokenizer.json with "normalizer": null.
  static BertNormalizerOptions None() { return {false, false, false, false}; }
};

}  // namespace bert::tokenizer
