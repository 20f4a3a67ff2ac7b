// BERT's vocab.txt: one token per line, the line number is the id.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace bert::tokenizer {

// Tokens in id order; trailing whitespace (\r included) is trimmed from each
// line, as Hugging Face's reader does. Errors name `source`.
absl::StatusOr<std::vector<std::string>> ParseVocabTxt(std::string_view contents,
                                                       const std::string& source);

// do_lower_case from `dir`/tokenizer_config.json when present, else true (as
// bert-base-uncased).
absl::StatusOr<bool> LowercaseFromConfig(const std::string& dir);

}  // namespace bert::tokenizer
