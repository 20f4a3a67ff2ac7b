#include "tokenizer/word_splitter.h"

namespace bert::tokenizer {

WordSplitter::WordSplitter(const BertNormalizerOptions& options)
    : options_(options), strip_accents_(options.StripAccents()) {
  for (int b = 0; b < 128; ++b) {
    char32_t c = static_cast<char32_t>(b);
    uint8_t f = CharFlags(c);
    AsciiAction action = kKeep;
    if (options_.clean_text && (f & kCharControl)) {
      action = kDrop;
    } else if (f & kCharWhitespace) {
      action = kSpace;  // with or without clean_text, the pre-tokenizer splits here
    } else if (f & kCharPunct) {
      action = kPunct;
    }
    ascii_action_[b] = action;
    char lower = static_cast<char>(b);
    if (options_.lowercase && b >= 'A' && b <= 'Z') lower = static_cast<char>(b + ('a' - 'A'));
    ascii_lower_[b] = lower;
  }
}

size_t WordSplitter::NormalizeChar(char32_t c, uint8_t flags, char32_t* out) const {
  if (!(flags & (kCharDecomposes | kCharLowerChanges | kCharMark))) {
    out[0] = c;
    return 1;
  }
  char32_t decomposed[8];
  size_t n = 1;
  decomposed[0] = c;
  if (strip_accents_) {
    n = DecomposeNfd(c, decomposed);
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
      char32_t d = decomposed[i];
      if (!(CharFlags(d) & kCharMark)) decomposed[kept++] = d;
    }
    n = kept;
  }
  if (!options_.lowercase) {
    for (size_t i = 0; i < n; ++i) out[i] = decomposed[i];
    return n;
  }
  size_t m = 0;
  for (size_t i = 0; i < n && m + 2 <= 8; ++i) m += ToLowerFull(decomposed[i], out + m);
  return m;
}

}  // namespace bert::tokenizer
