// Trains a BERT WordPiece vocabulary as Hugging Face's WordPieceTrainer does
// (its BPE trainer with the "##" continuation prefix; the merges are
// discarded and the trainer's token-to-id map becomes the vocabulary), but
// deterministically: the same vocabulary and ids on every run and for any
// number of threads. Where Hugging Face numbers the "##c" tokens in hash-map
// order, this trainer numbers them by how many distinct words carry c (most
// first, then code point: Hugging Face's most likely order), and equal-count
// merges are ordered by (left id, right id) then by when they were queued.
//
// Streaming: Feed*() normalizes and pre-tokenizes text on several threads and
// keeps only word counts; Train() needs memory in proportion to the number
// of distinct words, never to the corpus.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/progress_sink.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/word_splitter.h"

namespace bert::tokenizer {

struct WordPieceTrainerOptions {
  size_t vocab_size = 30000;
  uint64_t min_frequency = 0;                 // merges rarer than this stop training
  std::vector<std::string> special_tokens;    // first in the vocabulary, in this order
  std::optional<size_t> limit_alphabet;       // keep at most this many characters
  std::vector<std::string> initial_alphabet;  // characters always kept (one UTF-8 char each)
  bool lowercase = true;  // BertNormalizer lowercase; accents are stripped when lowercasing
  int threads = 0;        // word counting threads; 0 = all cores

  // The five BERT special tokens: [PAD] [UNK] [CLS] [SEP] [MASK].
  static std::vector<std::string> BertSpecialTokens();
};

// Not thread-safe: one caller at a time (it uses threads inside).
class WordPieceTrainer {
 public:
  explicit WordPieceTrainer(WordPieceTrainerOptions options);

  // Counts the words of each text.
  void Feed(std::span<const std::string_view> texts);
  // Counts the words of a buffer of texts, one per line. Lines may be split
  // between calls only at a line end.
  void FeedLines(std::string_view buffer);

  // Distinct words counted so far.
  size_t distinct_words() const;

  // Builds the tokenizer from the counts so far. With [CLS] and [SEP] among
  // the special tokens it has BERT's post-processing, added tokens and
  // decoder (as BertTokenizerFast.train_new_from_iterator); without, it is
  // what Hugging Face's plain WordPieceTrainer produces. `sink` (optional)
  // sees progress in "merges" and Cancelled().
  absl::StatusOr<Tokenizer> Train(ProgressSink* sink = nullptr);

 private:
  using Counts = absl::flat_hash_map<std::string, uint64_t>;
  void CountChunks(std::span<const std::string_view> chunks);

  WordPieceTrainerOptions options_;
  WordSplitter splitter_;
  int threads_;
  std::vector<Counts> counts_;  // one per thread, merged in Train()
};

// Trains on files of one text per line, reading them in blocks (memory:
// word counts and one block). Reports progress in "bytes" over all files
// and stops with CancelledError when sink.Cancelled().
absl::StatusOr<Tokenizer> TrainFromFiles(const std::vector<std::string>& files,
                                         const WordPieceTrainerOptions& options,
                                         ProgressSink& sink);

}  // namespace bert::tokenizer
