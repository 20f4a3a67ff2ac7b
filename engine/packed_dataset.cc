#include "engine/packed_dataset.h"

#include <span>

#include "engine/engine_error.h"

namespace bert::engine {
namespace {

[[noreturn]] void Throw(const formats::Error& error) {
  switch (error.code) {
    case formats::ErrorCode::kCorrupt:
      throw EngineError(FailureCause::kArtifactCorrupt, error.message);
    case formats::ErrorCode::kOutOfRange:
    case formats::ErrorCode::kInvalidArgument:
      throw EngineError(FailureCause::kInternal, error.message);
    default:
      throw EngineError(FailureCause::kDataError, error.message);
  }
}

}  // namespace

void PackedSplit::ReadBlock(int64_t index, int64_t* out) const {
  if (index < 0) {
    throw EngineError(FailureCause::kInternal, "block " + std::to_string(index) + " out of range [0, " +
                                                   std::to_string(blocks()) + ")");
  }
  const formats::Status read = split_.ReadBlock(
      static_cast<uint64_t>(index), std::span<int64_t>(out, static_cast<size_t>(seq_len())));
  if (!read.ok()) Throw(read.error());
}

PackedDataset PackedDataset::Open(const std::string& dir, bool verify_checksums) {
  formats::Result<formats::PackedDataset> opened = formats::PackedDataset::Open(dir, verify_checksums);
  if (!opened.ok()) Throw(opened.error());
  PackedDataset ds;
  ds.dataset_ = std::move(opened).value();
  const formats::DatasetManifest& m = ds.dataset_.manifest();
  const std::string manifest_path = dir + "/" + formats::kDatasetManifestFile;
  // formats/ checked every id against vocab_size; training needs all five.
  for (auto [name, id] : {std::pair{"pad", &ds.special_ids_.pad}, std::pair{"unk", &ds.special_ids_.unk},
                          std::pair{"cls", &ds.special_ids_.cls}, std::pair{"sep", &ds.special_ids_.sep},
                          std::pair{"mask", &ds.special_ids_.mask}}) {
    const auto it = m.special_token_ids.find(name);
    if (it == m.special_token_ids.end()) {
      throw EngineError(FailureCause::kDataError,
                        manifest_path + ": special_token_ids." + name + ": missing (training needs it)");
    }
    *id = it->second;
  }
  for (const auto& [name, split] : m.splits) {
    ds.splits_.emplace_back(name, PackedSplit(*ds.dataset_.FindSplit(name)));
  }
  return ds;
}

bool PackedDataset::has_split(const std::string& name) const {
  for (const auto& [n, s] : splits_) {
    if (n == name && s.blocks() > 0) return true;
  }
  return false;
}

const PackedSplit& PackedDataset::split(const std::string& name) const {
  for (const auto& [n, s] : splits_) {
    if (n == name) return s;
  }
  throw EngineError(FailureCause::kDataError,
                    dataset_.dir() + "/" + formats::kDatasetManifestFile + ": splits: no split \"" + name + "\"");
}

}  // namespace bert::engine
