// Test fixtures for the engine: real English text, a word-level vocabulary
// built from it, and packed datasets (docs/dataset-format.md) written from it.
// Plain functions; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bert::engine::testing {

// Lines of English text: the Brown corpus from $BERT_SHARED_DIR when present,
// else the excerpt committed under tests/engine/testdata.
std::vector<std::string> LoadEnglishLines(size_t max_lines);

struct WordVocab {
  std::vector<std::string> tokens;  // [PAD] [UNK] [CLS] [SEP] [MASK], then words by frequency
  int64_t Id(const std::string& word) const;
};

// Lowercased whitespace-separated words of `lines`, the `size` most frequent.
WordVocab BuildWordVocab(const std::vector<std::string>& lines, size_t size);

// Each line -> [CLS] ids [SEP]; concatenated, cut into blocks of seq_len,
// shuffled with seed 34; the last `validation_blocks` blocks form the
// validation split. Writes shards and manifest.json into `dir`.
// Returns the number of training blocks.
int64_t WritePackedDataset(const std::string& dir, const std::vector<std::string>& lines,
                           const WordVocab& vocab, int64_t seq_len, int64_t validation_blocks);

// The same from a stream of token ids that already holds each document's
// [CLS] and [SEP] (special ids 0-4 as in WordVocab, every id < vocab_size).
int64_t WritePackedIds(const std::string& dir, const std::vector<uint16_t>& stream,
                       int64_t vocab_size, int64_t documents, int64_t seq_len,
                       int64_t validation_blocks);

// A fresh empty directory under this test process's scratch directory
// (TEST_TMPDIR or /tmp, "bert-engine-test-PID"), which is removed at exit.
std::string MakeTempDir(const std::string& name);

// Runs `argv` (argv[0] a path), stdout captured into *out; returns the exit status
// (128 + signal when killed).
int RunProcess(const std::vector<std::string>& argv, std::string* out);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int FreeLoopbackPort();

// $BERT_BIN_DIR/name, or name beside the test binary's ../bin when unset.
std::string BinaryPath(const std::string& name);

}  // namespace bert::engine::testing
