#include "tokenizer/unicode_chars.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <atomic>

namespace bert::tokenizer {
namespace {

constexpr char32_t kMaxCodePoint = 0x10FFFF;

struct Range {
  char32_t first;
  char32_t last;
};

// White_Space (PropList.txt), as Rust's char::is_whitespace.
constexpr Range kWhitespace[] = {
    {0x09, 0x0D},     {0x20, 0x20},     {0x85, 0x85},     {0xA0, 0xA0},     {0x1680, 0x1680},
    {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}};

// The CJK ranges of BertNormalizer's handle_chinese_chars.
constexpr Range kChinese[] = {{0x4E00, 0x9FFF},   {0x3400, 0x4DBF},   {0x20000, 0x2A6DF},
                              {0x2A700, 0x2B73F}, {0x2B740, 0x2B81F}, {0x2B920, 0x2CEAF},
                              {0xF900, 0xFAFF},   {0x2F800, 0x2FA1F}};

#include "tokenizer/unicode_legacy_tables.inc"

// `ranges` sorted and disjoint, except the small hand-written lists above,
// which a linear scan covers.
bool InRanges(char32_t c, const Range* ranges, size_t n) {
  if (n <= 16) {
    for (size_t i = 0; i < n; ++i) {
      if (c >= ranges[i].first && c <= ranges[i].last) return true;
    }
    return false;
  }
  const Range* end = ranges + n;
  const Range* it =
      std::upper_bound(ranges, end, c, [](char32_t v, const Range& r) { return v < r.first; });
  return it != ranges && c <= (it - 1)->last;
}

uint8_t ComputeFlags(char32_t c) {
  uint8_t flags = 0;
  auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  bool control = category == UTF8PROC_CATEGORY_CC || category == UTF8PROC_CATEGORY_CF ||
                 category == UTF8PROC_CATEGORY_CO;
  if (InRanges(c, kLegacyNotControl, std::size(kLegacyNotControl))) control = false;
  if (InRanges(c, kLegacyControl, std::size(kLegacyControl))) control = true;
  if (c == 0 || c == 0xFFFD) control = true;
  if (c == '\t' || c == '\n' || c == '\r') control = false;
  if (control) flags |= kCharControl;
  if (InRanges(c, kWhitespace, std::size(kWhitespace))) flags |= kCharWhitespace;
  bool punct = category >= UTF8PROC_CATEGORY_PC && category <= UTF8PROC_CATEGORY_PO;
  if (InRanges(c, kLegacyNotPunct, std::size(kLegacyNotPunct))) punct = false;
  if (InRanges(c, kLegacyPunct, std::size(kLegacyPunct))) punct = true;
  if (c < 0x80 && ((c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
                   (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E))) {
    punct = true;
  }
  if (punct) flags |= kCharPunct;
  if (InRanges(c, kChinese, std::size(kChinese))) flags |= kCharChinese;
  bool mark = category == UTF8PROC_CATEGORY_MN;
  if (InRanges(c, kLegacyNotMark, std::size(kLegacyNotMark))) mark = false;
  if (InRanges(c, kLegacyMark, std::size(kLegacyMark))) mark = true;
  if (mark) flags |= kCharMark;
  char32_t buf[8];
  size_t n = DecomposeNfd(c, buf);
  if (n != 1 || buf[0] != c) flags |= kCharDecomposes;
  char32_t lower[2];
  if (ToLowerFull(c, lower) != 1 || lower[0] != c) flags |= kCharLowerChanges;
  return flags;
}

// The table is built lazily in blocks of 4096 code points: a process that
// sees only Latin text computes one or two blocks. Blocks are published with
// compare-exchange; a thread that loses the race frees its copy.
constexpr int kBlockBits = 12;
constexpr size_t kBlockCount = (kMaxCodePoint >> kBlockBits) + 1;
std::array<std::atomic<const uint8_t*>, kBlockCount> g_blocks{};

const uint8_t* Block(size_t index) {
  const uint8_t* block = g_blocks[index].load(std::memory_order_acquire);
  if (block != nullptr) return block;
  auto* fresh = new uint8_t[size_t{1} << kBlockBits];
  char32_t base = static_cast<char32_t>(index << kBlockBits);
  for (size_t i = 0; i < (size_t{1} << kBlockBits); ++i) {
    fresh[i] = ComputeFlags(base + static_cast<char32_t>(i));
  }
  const uint8_t* expected = nullptr;
  if (g_blocks[index].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
    return fresh;
  }
  delete[] fresh;
  return expected;
}

}  // namespace

uint8_t CharFlags(char32_t c) {
  if (c > kMaxCodePoint) return 0;
  return Block(c >> kBlockBits)[c & ((1u << kBlockBits) - 1)];
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

size_t DecomposeNfd(char32_t c, char32_t* out) {
  if (c < 0xC0 || InRanges(c, kLegacyNoDecompose, std::size(kLegacyNoDecompose))) {
    out[0] = c;
    return 1;
  }
  int boundclass = 0;
  utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c),
                                               reinterpret_cast<utf8proc_int32_t*>(out), 8,
                                               UTF8PROC_DECOMPOSE, &boundclass);
  if (n < 1 || n > 8) {
    out[0] = c;
    return 1;
  }
  return static_cast<size_t>(n);
}

size_t ToLowerFull(char32_t c, char32_t* out) {
  if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: SpecialCasing
    out[0] = 'i';
    out[1] = 0x307;
    return 2;
  }
  // Mappings newer than utf8proc's tables (sorted by code point).
  const Range* end = kLegacyLower + std::size(kLegacyLower);
  const Range* it = std::lower_bound(kLegacyLower, end, c,
                                     [](const Range& r, char32_t v) { return r.first < v; });
  if (it != end && it->first == c) {
    out[0] = it->last;
    return 1;
  }
  out[0] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
  return 1;
}

}  // namespace bert::tokenizer
