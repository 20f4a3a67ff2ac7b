// Normalization (BertNormalizer) and pre-tokenization (BertPreTokenizer) in
// one pass: text in, normalized words out, without building the normalized
// text. ASCII takes a table-driven fast path; every other character goes
// through the exact Unicode path (unicode_chars.h).
//
// A WordSplitter is immutable and thread-safe; the scratch buffers live in a
// WordSplitter::Scratch that each thread owns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/bert_normalizer.h"
#include "tokenizer/unicode_chars.h"

namespace bert::tokenizer {

class WordSplitter {
 public:
  // Byte span [first, second) in the input text of one normalized byte.
  using Alignment = std::pair<uint32_t, uint32_t>;

  // Per-thread buffers, reused across calls.
  struct Scratch {
    std::string word;
    std::vector<Alignment> align;  // one per byte of `word`, when aligning
  };

  explicit WordSplitter(const BertNormalizerOptions& options);

  const BertNormalizerOptions& options() const { return options_; }

  // Calls on_word(std::string_view word, const Alignment* align) for every
  // pre-token of `text`, in order. `align` is non-null when kAlign: it maps
  // each byte of `word` to the span of the original character it came from.
  template <bool kAlign, typename OnWord>
  void Split(std::string_view text, Scratch& scratch, OnWord&& on_word) const;

 private:
  enum AsciiAction : uint8_t { kKeep, kDrop, kSpace, kPunct };

  // Normalizes one non-ASCII character; writes up to 8 code points.
  size_t NormalizeChar(char32_t c, uint8_t flags, char32_t* out) const;

  BertNormalizerOptions options_;
  bool strip_accents_;
  AsciiAction ascii_action_[128];
  char ascii_lower_[128];
};

template <bool kAlign, typename OnWord>
void WordSplitter::Split(std::string_view text, Scratch& scratch, OnWord&& on_word) const {
  std::string& word = scratch.word;
  std::vector<Alignment>& align = scratch.align;
  word.clear();
  if constexpr (kAlign) align.clear();
  auto flush = [&] {
    if (!word.empty()) {
      on_word(std::string_view(word), kAlign ? align.data() : nullptr);
      word.clear();
      if constexpr (kAlign) align.clear();
    }
  };
  auto append = [&](char32_t c, uint32_t begin, uint32_t end) {
    AppendUtf8(c, &word);
    if constexpr (kAlign) align.resize(word.size(), Alignment{begin, end});
  };
  // A normalized character goes through the pre-tokenizer's rules.
  auto pre_tokenize = [&](char32_t c, uint32_t begin, uint32_t end) {
    uint8_t f = c < 0x80 ? 0 : CharFlags(c);
    if (c < 0x80) {
      AsciiAction a = ascii_action_[c];
      // Normalized ASCII is never dropped again: only whitespace and punctuation matter.
      if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
        flush();
      } else if (a == kPunct) {
        flush();
        append(c, begin, end);
        flush();
      } else {
        append(c, begin, end);
      }
      return;
    }
    if (f & kCharWhitespace) {
      flush();
    } else if (f & kCharPunct) {
      flush();
      append(c, begin, end);
      flush();
    } else {
      append(c, begin, end);
    }
  };

  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    unsigned char b = p[i];
    if (b < 0x80) {
      switch (ascii_action_[b]) {
        case kKeep:
          word.push_back(ascii_lower_[b]);
          if constexpr (kAlign) align.emplace_back(uint32_t(i), uint32_t(i + 1));
          break;
        case kDrop:
          break;
        case kSpace:
          flush();
          break;
        case kPunct:
          flush();
          word.push_back(static_cast<char>(b));
          if constexpr (kAlign) align.emplace_back(uint32_t(i), uint32_t(i + 1));
          flush();
          break;
      }
      ++i;
      continue;
    }
    char32_t c;
    size_t len = DecodeUtf8(p + i, n - i, &c);
    uint32_t begin = static_cast<uint32_t>(i);
    uint32_t end = static_cast<uint32_t>(i + len);
    i += len;
    uint8_t f = CharFlags(c);
    if (options_.clean_text) {
      if (f & kCharControl) continue;
      if (f & kCharWhitespace) {
        flush();
        continue;
      }
    }
    bool chinese = options_.handle_chinese_chars && (f & kCharChinese);
    if (chinese) flush();
    char32_t out[8];
    size_t m = NormalizeChar(c, f, out);
    for (size_t k = 0; k < m; ++k) pre_tokenize(out[k], begin, end);
    if (chinese) flush();
  }
  flush();
}

}  // namespace bert::tokenizer
