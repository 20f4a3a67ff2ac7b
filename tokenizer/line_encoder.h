// Encodes many lines at once on several threads, for bertctl tokenize and
// the benchmarks: one output row per input line, in input order.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace bert::tokenizer {

struct LineEncodeOptions {
  bool add_special_tokens = false;
  int threads = 0;  // 0 = all cores
};

// Splits `text` into lines ('\n'; a trailing '\r' stays part of the line and
// is whitespace to the normalizer). A final line without '\n' counts; a
// final '\n' does not start another line.
std::vector<std::string_view> SplitLines(std::string_view text);

// ids[i] = the ids of lines[i]. `ids` is resized to lines.size().
void EncodeLines(const Tokenizer& tokenizer, std::span<const std::string_view> lines,
                 const LineEncodeOptions& options, std::vector<std::vector<uint32_t>>* ids);

// Appends one line per row: ids (or tokens when `as_tokens`) separated by spaces.
void FormatRows(const Tokenizer& tokenizer, std::span<const std::vector<uint32_t>> rows,
                bool as_tokens, std::string* out);

}  // namespace bert::tokenizer
