// manifest.json of a packed dataset (docs/dataset-format.md): parse and write.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace bert::data {

inline constexpr char kPackedDatasetFormat[] = "bert-packed-dataset";
inline constexpr int kPackedDatasetFormatVersion = 1;

struct DatasetShard {
  std::string file;  // relative to the dataset directory
  uint64_t blocks = 0;
  std::string sha256;
};

struct DatasetSplit {
  uint64_t blocks = 0;
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
  std::map<std::string, uint32_t> special_token_ids;  // pad unk cls sep mask
  uint64_t shuffle_seed = 0;
  std::string shuffle;  // "numpy-pcg64-permutation"
  bool split_long_documents = false;
  std::map<std::string, DatasetSplit> splits;  // "train", "validation"
  DatasetStats stats;

  size_t dtype_bytes() const { return dtype == "uint16" ? 2 : 4; }
  uint64_t block_bytes() const { return uint64_t{seq_len} * dtype_bytes(); }

  nlohmann::json ToJson() const;
  // `where` names the file in errors.
  static absl::StatusOr<DatasetManifest> FromJson(const nlohmann::json& json,
                                                  const std::string& where);
};

}  // namespace bert::data
