// PackedDataset for the service side: the one reader of docs/dataset-format.md
// (formats/packed_dataset.h, standard library only) with errors as absl::Status.
// The manifest types are formats/'s, named here for data/ and its callers.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "formats/dataset_manifest.h"
#include "formats/packed_dataset.h"

namespace bert::data {

using formats::DatasetManifest;
using formats::DatasetShard;
using formats::DatasetSplit;
using formats::DatasetStats;

// Immutable after Open: every const method is thread-safe.
class PackedDataset {
 public:
  // Checks format, version and every shard's size; with `verify`, also SHA-256.
  // NotFound without a manifest, InvalidArgument for another format or version,
  // DataLoss for a malformed manifest or a truncated or corrupt shard.
  static absl::StatusOr<PackedDataset> Open(const std::string& dir, bool verify = false);

  const DatasetManifest& manifest() const { return dataset_.manifest(); }
  uint64_t num_blocks(const std::string& split) const { return dataset_.num_blocks(split); }
  // Block `index` of `split`, widened to uint32. OutOfRange / NotFound on bad arguments.
  absl::StatusOr<std::vector<uint32_t>> Block(const std::string& split, uint64_t index) const;

 private:
  explicit PackedDataset(formats::PackedDataset dataset) : dataset_(std::move(dataset)) {}
  formats::PackedDataset dataset_;
};

}  // namespace bert::data
