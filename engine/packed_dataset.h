// PackedDataset: the engine's view of a packed dataset directory
// (docs/dataset-format.md). The reading is formats/packed_dataset.h's, the one
// reader of the format; this adapter throws its errors as EngineError (a
// truncated or corrupt shard as kArtifactCorrupt, anything else wrong with the
// dataset as kDataError) and requires what training needs: all five special
// token ids, seq_len >= 2. Immutable after Open(): every const method is
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "formats/packed_dataset.h"

namespace bert::engine {

struct SpecialTokenIds {
  int64_t pad = 0;
  int64_t unk = 1;
  int64_t cls = 2;
  int64_t sep = 3;
  int64_t mask = 4;
};

// One split ("train", "validation"): blocks of seq_len token ids.
class PackedSplit {
 public:
  PackedSplit() = default;
  explicit PackedSplit(formats::PackedSplit split) : split_(std::move(split)) {}
  int64_t blocks() const { return static_cast<int64_t>(split_.blocks()); }
  int64_t seq_len() const { return split_.seq_len(); }
  // Copies global block `index` (0 <= index < blocks()) into out[0, seq_len);
  // throws EngineError(kInternal) out of range.
  void ReadBlock(int64_t index, int64_t* out) const;

 private:
  formats::PackedSplit split_;
};

class PackedDataset {
 public:
  // Opens `dir`; with `verify_checksums`, hashes every shard against the manifest.
  static PackedDataset Open(const std::string& dir, bool verify_checksums);

  int64_t seq_len() const { return static_cast<int64_t>(dataset_.manifest().seq_len); }
  int64_t vocab_size() const { return static_cast<int64_t>(dataset_.manifest().vocab_size); }
  const SpecialTokenIds& special_ids() const { return special_ids_; }
  const std::string& tokenizer_sha256() const { return dataset_.manifest().tokenizer_sha256; }
  bool has_split(const std::string& name) const;
  // The named split; throws EngineError(kDataError) if the manifest lacks it.
  const PackedSplit& split(const std::string& name) const;

 private:
  formats::PackedDataset dataset_;
  SpecialTokenIds special_ids_;
  std::vector<std::pair<std::string, PackedSplit>> splits_;
};

}  // namespace bert::engine
