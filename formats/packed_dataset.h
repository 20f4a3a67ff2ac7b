// PackedDataset: the reader of a packed dataset directory (docs/dataset-format.md,
// format version 1) — its manifest, and any block of a split through mmap of the
// shards. The one reader of the format: data/, bertctl and the engine use it.
//
// Open() checks the manifest (formats/dataset_manifest.h), that every shard
// exists with exactly blocks x seq_len x dtype bytes, and with `verify` its
// SHA-256. Immutable after Open(): every const method is thread-safe. Copies
// share the mappings, which live as long as any copy.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/dataset_manifest.h"
#include "formats/mapped_file.h"
#include "formats/result.h"

namespace bert::formats {

// One split ("train", "validation"): blocks of seq_len token ids over its shards.
class PackedSplit {
 public:
  PackedSplit() = default;
  uint64_t blocks() const { return blocks_; }
  uint32_t seq_len() const { return seq_len_; }
  // Copies block `index` into `out`, widened; out.size() must be seq_len().
  // kOutOfRange when index >= blocks().
  Status ReadBlock(uint64_t index, std::span<uint32_t> out) const;
  Status ReadBlock(uint64_t index, std::span<int64_t> out) const;

 private:
  friend class PackedDataset;
  template <typename T>
  Status Read(uint64_t index, std::span<T> out) const;

  std::string where_;  // "DIR: split 'train'", for errors
  std::vector<std::shared_ptr<const MappedFile>> shards_;  // the shards with blocks, in order
  std::vector<uint64_t> first_block_;  // the first global block of each of shards_ (ascending)
  uint64_t blocks_ = 0;
  uint32_t seq_len_ = 0;
  uint32_t token_bytes_ = 2;  // 2 (uint16) or 4 (uint32)
};

class PackedDataset {
 public:
  // Opens `dir`; with `verify`, hashes every shard that records a SHA-256.
  // kNotFound when DIR/manifest.json is absent (an incomplete dataset).
  static Result<PackedDataset> Open(const std::string& dir, bool verify = false);

  const std::string& dir() const { return dir_; }
  const DatasetManifest& manifest() const { return manifest_; }
  // The named split, or nullptr when the manifest has none.
  const PackedSplit* FindSplit(const std::string& name) const;
  // Blocks of `split`; 0 when there is no such split.
  uint64_t num_blocks(const std::string& split) const;
  // Block `index` of `split`, widened to uint32: kNotFound, kOutOfRange on bad arguments.
  Result<std::vector<uint32_t>> Block(const std::string& split, uint64_t index) const;

 private:
  std::string dir_;
  DatasetManifest manifest_;
  std::map<std::string, PackedSplit> splits_;
};

}  // namespace bert::formats
