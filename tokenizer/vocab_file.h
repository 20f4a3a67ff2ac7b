// BERT's vocab.txt: one token per line, the line number is the id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace bert::tokenizer {

// Tokens in id order; trailing whitespace (\r included) is trimmed from each
// line, as Hugging Face's reader does. Errors name `source`.
absl::StatusOr<std::vector<std::string>> ParseVocabTxt(std::string_view contents,
                                                       const std::string& source);

// Hugging Face's largest tokenizer.json files are tens of MB.
inline constexpr uint64_t kMaxTokenizerFileBytes = uint64_t{256} << 20;

// The contents of a tokenizer file (tokenizer.json, vocab.txt,
// tokenizer_config.json): only a regular file (a FIFO or a device such as
// /dev/zero is refused without being opened) of at most `max_bytes`.
absl::StatusOr<std::string> ReadTokenizerFile(const std::string& path,
                                              uint64_t max_bytes = kMaxTokenizerFileBytes);

// do_lower_case from `dir`/tokenizer_config.json when present, else true (as
// bert-base-uncased).
absl::StatusOr<bool> LowercaseFromConfig(const std::string& dir);

}  // namespace bert::tokenizer
