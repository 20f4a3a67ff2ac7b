#include "data/packed_dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/posix_error.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace bert::data {

PackedDataset::~PackedDataset() {
  for (const Mapping& m : mappings_) {
    if (m.data != nullptr) ::munmap(const_cast<uint8_t*>(m.data), m.bytes);
  }
}

absl::StatusOr<PackedDataset> PackedDataset::Open(const std::string& dir, bool verify) {
  const std::string path = dir + "/manifest.json";
  BERT_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::DataLossError(absl::StrCat(path, ": not valid JSON"));
  PackedDataset ds;
  BERT_ASSIGN_OR_RETURN(ds.manifest_, DatasetManifest::FromJson(json, path));
  const uint64_t block_bytes = ds.manifest_.block_bytes();
  for (const auto& [name, split] : ds.manifest_.splits) {
    SplitIndex& index = ds.index_[name];
    index.first_block.push_back(0);
    for (const DatasetShard& shard : split.shards) {
      const std::string file = dir + "/" + shard.file;
      int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return PosixError("open", file, errno);
      struct stat st;
      if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return PosixError("stat", file, err);
      }
      const uint64_t expected = shard.blocks * block_bytes;
      if (static_cast<uint64_t>(st.st_size) != expected) {
        ::close(fd);
        return absl::DataLossError(
            absl::StrCat(file, ": ", st.st_size, " bytes, but ", shard.blocks, " blocks of ",
                         block_bytes, " bytes need ", expected, " (truncated or corrupt shard)"));
      }
      Mapping m;
      m.bytes = expected;
      if (expected > 0) {
        void* p = ::mmap(nullptr, expected, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
          int err = errno;
          ::close(fd);
          return PosixError("mmap", file, err);
        }
        m.data = static_cast<const uint8_t*>(p);
      }
      ::close(fd);
      ds.mappings_.push_back(m);
      if (verify && !shard.sha256.empty()) {
        std::string sha =
            Sha256Hex(std::string_view(reinterpret_cast<const char*>(m.data), m.bytes));
        if (sha != shard.sha256) {
          return absl::DataLossError(
              absl::StrCat(file, ": SHA-256 ", sha, " but ", path, " says ", shard.sha256));
        }
      }
      index.mapping.push_back(ds.mappings_.size() - 1);
      index.first_block.push_back(index.first_block.back() + shard.blocks);
    }
  }
  return ds;
}

uint64_t PackedDataset::num_blocks(const std::string& split) const {
  auto it = manifest_.splits.find(split);
  return it == manifest_.splits.end() ? 0 : it->second.blocks;
}

absl::StatusOr<std::vector<uint32_t>> PackedDataset::Block(const std::string& split,
                                                           uint64_t index) const {
  auto it = index_.find(split);
  if (it == index_.end()) return absl::NotFoundError(absl::StrCat("no split '", split, "'"));
  const SplitIndex& si = it->second;
  if (index >= si.first_block.back()) {
    return absl::OutOfRangeError(absl::StrCat("block ", index, " of split '", split, "' (",
                                              si.first_block.back(), " blocks)"));
  }
  // The shard whose cumulative range holds `index`.
  size_t shard = std::upper_bound(si.first_block.begin(), si.first_block.end(), index) -
                 si.first_block.begin() - 1;
  const Mapping& m = mappings_[si.mapping[shard]];
  const uint8_t* p = m.data + (index - si.first_block[shard]) * manifest_.block_bytes();
  std::vector<uint32_t> ids(manifest_.seq_len);
  if (manifest_.dtype == "uint16") {
    for (uint32_t k = 0; k < manifest_.seq_len; ++k) {
      uint16_t v;
      std::memcpy(&v, p + 2 * k, 2);
      ids[k] = v;
    }
  } else {
    std::memcpy(ids.data(), p, manifest_.block_bytes());
  }
  return ids;
}

}  // namespace bert::data
