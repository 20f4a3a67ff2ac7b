#include "formats/packed_dataset.h"

#include <algorithm>
#include <cstring>

#include "formats/sha256.h"

namespace bert::formats {

template <typename T>
Status PackedSplit::Read(uint64_t index, std::span<T> out) const {
  if (index >= blocks_) {
    return Error{ErrorCode::kOutOfRange, where_ + ": block " + std::to_string(index) +
                                             " out of range [0, " + std::to_string(blocks_) + ")"};
  }
  if (out.size() != seq_len_) {
    return Error{ErrorCode::kInvalidArgument,
                 where_ + ": a buffer of " + std::to_string(out.size()) +
                     " ids cannot hold a block of seq_len " + std::to_string(seq_len_)};
  }
  // The shard whose cumulative range holds `index`: the last first_block <= index.
  const size_t shard = static_cast<size_t>(
      std::upper_bound(first_block_.begin(), first_block_.end(), index) - first_block_.begin() - 1);
  const MappedFile& file = *shards_[shard];
  // Open() checked every shard's size (which cannot overflow); check again
  // against the mapping so that no index can read outside it.
  const uint64_t block_bytes = uint64_t{seq_len_} * token_bytes_;
  const uint64_t local = index - first_block_[shard];
  if (local >= file.size() / block_bytes) {
    return Error{ErrorCode::kCorrupt, where_ + ": block " + std::to_string(index) +
                                          " lies outside its shard's mapping"};
  }
  const uint8_t* p = file.data() + local * block_bytes;
  // Little-endian on disk; the hosts we build for are little-endian too.
  if (token_bytes_ == 2) {
    for (uint32_t t = 0; t < seq_len_; ++t) {
      uint16_t v;
      std::memcpy(&v, p + 2 * t, 2);
      out[t] = static_cast<T>(v);
    }
  } else {
    for (uint32_t t = 0; t < seq_len_; ++t) {
      uint32_t v;
      std::memcpy(&v, p + 4 * t, 4);
      out[t] = static_cast<T>(v);
    }
  }
  return Status();
}

Status PackedSplit::ReadBlock(uint64_t index, std::span<uint32_t> out) const {
  return Read(index, out);
}

Status PackedSplit::ReadBlock(uint64_t index, std::span<int64_t> out) const {
  return Read(index, out);
}

Result<PackedDataset> PackedDataset::Open(const std::string& dir, bool verify) {
  const std::string manifest_path = dir + "/" + kDatasetManifestFile;
  Result<DatasetManifest> manifest = DatasetManifest::Read(manifest_path);
  if (!manifest.ok()) return manifest.error();
  PackedDataset ds;
  ds.dir_ = dir;
  ds.manifest_ = std::move(manifest).value();
  const DatasetManifest& m = ds.manifest_;
  const uint64_t block_bytes = m.block_bytes();
  for (const auto& [name, split] : m.splits) {
    PackedSplit& out = ds.splits_[name];
    out.where_ = dir + ": split '" + name + "'";
    out.seq_len_ = m.seq_len;
    out.token_bytes_ = static_cast<uint32_t>(m.dtype_bytes());
    for (size_t i = 0; i < split.shards.size(); ++i) {
      const DatasetShard& shard = split.shards[i];
      const std::string field = "splits." + name + ".shards[" + std::to_string(i) + "]";
      const std::string path = dir + "/" + shard.file;
      Result<std::shared_ptr<const MappedFile>> file = MappedFile::Open(path);
      if (!file.ok()) return file.error();
      // FromJson bounded blocks x block_bytes below 2^63: the product is exact.
      const uint64_t expected = shard.blocks * block_bytes;
      if ((*file)->size() != expected) {
        return Error{ErrorCode::kCorrupt,
                     path + ": " + std::to_string((*file)->size()) + " bytes, but " + field +
                         ".blocks in " + manifest_path + " says " + std::to_string(shard.blocks) +
                         " blocks of " + std::to_string(m.seq_len) + " " + m.dtype + " (" +
                         std::to_string(expected) + " bytes): truncated or corrupt shard"};
      }
      if (verify && !shard.sha256.empty()) {
        Sha256 sha;
        sha.Update((*file)->data(), static_cast<size_t>((*file)->size()));
        const std::string got = sha.HexDigest();
        if (got != shard.sha256) {
          return Error{ErrorCode::kCorrupt, path + ": SHA-256 " + got + " does not match " +
                                                field + ".sha256 " + shard.sha256 + " in " +
                                                manifest_path + " (corrupt shard)"};
        }
      }
      if (shard.blocks == 0) continue;
      (*file)->AdviseRandomAccess();
      out.first_block_.push_back(out.blocks_);
      out.shards_.push_back(std::move(file).value());
      out.blocks_ += shard.blocks;  // FromJson bounded the sum
    }
  }
  return ds;
}

const PackedSplit* PackedDataset::FindSplit(const std::string& name) const {
  const auto it = splits_.find(name);
  return it == splits_.end() ? nullptr : &it->second;
}

uint64_t PackedDataset::num_blocks(const std::string& split) const {
  const PackedSplit* s = FindSplit(split);
  return s == nullptr ? 0 : s->blocks();
}

Result<std::vector<uint32_t>> PackedDataset::Block(const std::string& split,
                                                   uint64_t index) const {
  const PackedSplit* s = FindSplit(split);
  if (s == nullptr) {
    return Error{ErrorCode::kNotFound,
                 dir_ + "/" + kDatasetManifestFile + ": splits: no split '" + split + "'"};
  }
  std::vector<uint32_t> ids(s->seq_len());
  const Status read = s->ReadBlock(index, ids);
  if (!read.ok()) return read.error();
  return ids;
}

}  // namespace bert::formats
