// The merge loop of Hugging Face's BPE trainer (models/bpe/trainer.rs), as
// its WordPieceTrainer runs it, made deterministic: from word counts to the
// vocabulary in id order (special tokens, alphabet, "##" characters, merged
// tokens in merge order).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/progress_sink.h"
#include "tokenizer/wordpiece_trainer.h"

namespace bert::tokenizer {

// `words`: distinct normalized words with their counts, in any order (the
// result does not depend on it). `sink` may be null.
absl::StatusOr<std::vector<std::string>> LearnVocabulary(
    std::vector<std::pair<std::string, uint64_t>> words, const WordPieceTrainerOptions& options,
    ProgressSink* sink);

}  // namespace bert::tokenizer
