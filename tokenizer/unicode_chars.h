// Per-code-point facts that BERT normalization and pre-tokenization need,
// with Hugging Face `tokenizers` semantics (see normalizers/bert.rs and
// pre_tokenizers/bert.rs there), from utf8proc's Unicode tables.
//
// Hugging Face classifies punctuation and control characters with the
// `unicode_categories` crate, whose tables predate Unicode 9; characters
// assigned later are corrected back to that older classification here
// (the exception lists in unicode_chars.cc, checked code point by code point
// against the reference by bench/tokenizer/compare_unicode.sh).
//
// All functions are thread-safe; the table is built once on first use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bert::tokenizer {

enum CharFlag : uint8_t {
  kCharControl = 1 << 0,       // dropped by clean_text (NUL, U+FFFD, Cc, Cf, Co; not \t \n \r)
  kCharWhitespace = 1 << 1,    // \t \n \r or White_Space
  kCharPunct = 1 << 2,         // ASCII punctuation or P* categories: its own pre-token
  kCharChinese = 1 << 3,       // CJK ideograph ranges that get spaces around them
  kCharMark = 1 << 4,          // non-spacing mark (Mn): dropped by strip_accents after NFD
  kCharDecomposes = 1 << 5,    // NFD changes it
  kCharLowerChanges = 1 << 6,  // lowercasing changes it
};

// Flags of a code point (0 for values above U+10FFFF).
uint8_t CharFlags(char32_t c);

// Decodes one UTF-8 character at p[0..n) (n >= 1). Invalid or truncated
// sequences, overlong forms and surrogates decode as U+FFFD consuming one byte.
// Returns the number of bytes consumed.
inline size_t DecodeUtf8(const unsigned char* p, size_t n, char32_t* out) {
  unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *out = b0;
    return 1;
  }
  auto cont = [&](size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) {
    *out = (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    char32_t c = (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) {
      *out = c;
      return 3;
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    char32_t c = (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
                 (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    if (c >= 0x10000 && c <= 0x10FFFF) {
      *out = c;
      return 4;
    }
  }
  *out = 0xFFFD;
  return 1;
}

// Appends the UTF-8 encoding of `c` to `out`.
void AppendUtf8(char32_t c, std::string* out);

// Writes NFD(c) to out[0..) and returns its length (at most 4 code points for
// any Unicode character; `out` must hold 8).
size_t DecomposeNfd(char32_t c, char32_t* out);

// Lowercase as Rust's char::to_lowercase: writes 1 or 2 code points
// (U+0130 becomes "i\u0307") and returns how many.
size_t ToLowerFull(char32_t c, char32_t* out);

}  // namespace bert::tokenizer
