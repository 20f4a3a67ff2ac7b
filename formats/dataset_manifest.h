// DatasetManifest: manifest.json of a packed dataset (docs/dataset-format.md,
// format version 1), parsed, checked and written.
//
// The manifest is untrusted input: FromJson checks every field the readers
// rely on, including that no shard's byte size (blocks x seq_len x dtype
// bytes) nor any split's block count overflows, and names the file and the
// field in every error.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "formats/result.h"
#include "nlohmann/json.hpp"

namespace bert::formats {

inline constexpr char kPackedDatasetFormat[] = "bert-packed-dataset";
inline constexpr int kPackedDatasetFormatVersion = 1;
inline constexpr char kDatasetManifestFile[] = "manifest.json";
// Bounds a reader enforces: a block holds at least [CLS] and [SEP], and at most 2^20 tokens.
inline constexpr uint64_t kMinSeqLen = 2;
inline constexpr uint64_t kMaxSeqLen = uint64_t{1} << 20;
// manifest.json is read only up to this size (a shard's entry is ~150 bytes).
inline constexpr uint64_t kMaxDatasetManifestBytes = uint64_t{64} << 20;

struct DatasetShard {
  std::string file;  // a plain file name in the dataset directory
  uint64_t blocks = 0;
  std::string sha256;  // lowercase hex; empty: not recorded
};

struct DatasetSplit {
  uint64_t blocks = 0;  // the sum of the shards' blocks
  std::vector<DatasetShard> shards;
};

struct DatasetStats {
  uint64_t documents = 0;
  uint64_t tokens = 0;                    // all tokens of all texts, before cutting blocks
  uint64_t tokens_truncated = 0;          // dropped by truncation at seq_len
  uint64_t tokens_dropped_remainder = 0;  // the tail that did not fill a block
};

struct DatasetManifest {
  std::string dtype;  // "uint16" or "uint32"
  uint32_t seq_len = 0;
  uint64_t vocab_size = 0;
  std::string tokenizer_sha256;
  std::map<std::string, uint32_t> special_token_ids;  // those of pad unk cls sep mask the vocabulary has
  uint64_t shuffle_seed = 0;
  std::string shuffle;  // "numpy-pcg64-permutation"
  bool split_long_documents = false;
  std::map<std::string, DatasetSplit> splits;  // "train", "validation"
  DatasetStats stats;

  size_t dtype_bytes() const { return dtype == "uint16" ? 2 : 4; }
  uint64_t block_bytes() const { return uint64_t{seq_len} * dtype_bytes(); }

  nlohmann::json ToJson() const;
  // `where` (the manifest's path) prefixes every error: kUnsupported for
  // another format or version, kMalformed for anything else wrong.
  static Result<DatasetManifest> FromJson(const nlohmann::json& json, const std::string& where);
  static Result<DatasetManifest> Parse(std::string_view text, const std::string& where);
  // Reads and parses the file at `path`: a regular file of at most
  // kMaxDatasetManifestBytes. kNotFound when it is absent.
  static Result<DatasetManifest> Read(const std::string& path);
};

}  // namespace bert::formats
