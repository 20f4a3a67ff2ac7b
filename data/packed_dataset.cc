#include "data/packed_dataset.h"

#include "data/formats_status.h"

namespace bert::data {

absl::StatusOr<PackedDataset> PackedDataset::Open(const std::string& dir, bool verify) {
  formats::Result<formats::PackedDataset> dataset = formats::PackedDataset::Open(dir, verify);
  if (!dataset.ok()) return FormatsStatus(dataset.error());
  return PackedDataset(std::move(dataset).value());
}

absl::StatusOr<std::vector<uint32_t>> PackedDataset::Block(const std::string& split,
                                                           uint64_t index) const {
  formats::Result<std::vector<uint32_t>> ids = dataset_.Block(split, index);
  if (!ids.ok()) return FormatsStatus(ids.error());
  return std::move(ids).value();
}

}  // namespace bert::data
