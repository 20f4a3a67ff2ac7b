// The prepared corpus: the output of the prepare stage, read by the tokenizer
// and preprocess stages.
//
//   DIR/manifest.json     written last: {"format": "bert-prepared-corpus",
//                         "format_version": 1, "shards": [...], "stats": {...}}
//   DIR/corpus-00000.txt  UTF-8, one document per line ('\n'-terminated), in
//                         document order (sources in spec order, files sorted,
//                         lines in file order), duplicates and filtered texts removed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/corpus_stats.h"

namespace bert::data {

inline constexpr char kPreparedCorpusFormat[] = "bert-prepared-corpus";
inline constexpr int kPreparedCorpusFormatVersion = 1;

struct PreparedShard {
  std::string file;  // relative to the corpus directory
  uint64_t documents = 0;
  uint64_t bytes = 0;  // file size
  std::string sha256;
};

struct PreparedCorpus {
  std::string dir;
  std::vector<PreparedShard> shards;
  CorpusStats stats;

  std::string ShardPath(size_t i) const { return dir + "/" + shards[i].file; }
  // Reads DIR/manifest.json; errors name the file and what is wrong. With
  // `verify`, also checks every shard's size and SHA-256.
  static absl::StatusOr<PreparedCorpus> Load(const std::string& dir, bool verify = false);
  // Writes DIR/manifest.json atomically.
  absl::Status Save() const;
};

}  // namespace bert::data
