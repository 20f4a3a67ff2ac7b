// Read access to a packed dataset directory (docs/dataset-format.md): the
// manifest, and block i of a split in O(1) through mmap of its shards.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset_manifest.h"

namespace bert::data {

// Immutable after Open: every const method is thread-safe. Move-only.
class PackedDataset {
 public:
  // Checks format, version and every shard's size; with `verify`, also SHA-256.
  static absl::StatusOr<PackedDataset> Open(const std::string& dir, bool verify = false);

  const DatasetManifest& manifest() const { return manifest_; }
  uint64_t num_blocks(const std::string& split) const;
  // Block `index` of `split`, widened to uint32. OutOfRange / NotFound on bad arguments.
  absl::StatusOr<std::vector<uint32_t>> Block(const std::string& split, uint64_t index) const;

  PackedDataset(PackedDataset&&) noexcept = default;
  PackedDataset& operator=(PackedDataset&&) noexcept = default;
  ~PackedDataset();

 private:
  struct Mapping {
    const uint8_t* data = nullptr;
    uint64_t bytes = 0;
  };
  struct SplitIndex {
    std::vector<uint64_t> first_block;  // prefix sums over shards (size shards + 1)
    std::vector<size_t> mapping;        // index into mappings_ per shard
  };
  PackedDataset() = default;

  DatasetManifest manifest_;
  std::vector<Mapping> mappings_;
  std::map<std::string, SplitIndex> index_;
};

}  // namespace bert::data
