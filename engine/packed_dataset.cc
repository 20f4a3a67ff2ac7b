#include "engine/packed_dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/engine_error.h"
#include "engine/sha256_stream.h"

namespace bert::engine {

// A read-only memory mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      throw EngineError(FailureCause::kDataError, path + ": cannot open: " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw EngineError(FailureCause::kDataError, path + ": cannot stat: " + std::strerror(err));
    }
    auto file = std::shared_ptr<MappedFile>(new MappedFile());
    file->size_ = static_cast<size_t>(st.st_size);
    if (file->size_ > 0) {
      void* data = ::mmap(nullptr, file->size_, PROT_READ, MAP_SHARED, fd, 0);
      if (data == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw EngineError(FailureCause::kDataError, path + ": cannot mmap: " + std::strerror(err));
      }
      ::madvise(data, file->size_, MADV_RANDOM);
      file->data_ = static_cast<const uint8_t*>(data);
    }
    ::close(fd);
    return file;
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

void PackedSplit::ReadBlock(int64_t index, int64_t* out) const {
  if (index < 0 || index >= total_blocks_) {
    throw EngineError(FailureCause::kInternal,
                      "block " + std::to_string(index) + " out of range [0, " +
                          std::to_string(total_blocks_) + ")");
  }
  // The shard whose cumulative range holds `index`: the last start <= index.
  const auto it = std::upper_bound(shard_of_block_start_.begin(), shard_of_block_start_.end(), index);
  const Shard& shard = shards_[static_cast<size_t>(it - shard_of_block_start_.begin() - 1)];
  const size_t offset = static_cast<size_t>((index - shard.first_block) * seq_len_ * token_bytes_);
  const uint8_t* p = shard.file->data() + offset;
  // Little-endian on disk; the hosts we build for are little-endian too.
  if (token_bytes_ == 2) {
    uint16_t v;
    for (int64_t t = 0; t < seq_len_; ++t) {
      std::memcpy(&v, p + 2 * t, 2);
      out[t] = v;
    }
  } else {
    uint32_t v;
    for (int64_t t = 0; t < seq_len_; ++t) {
      std::memcpy(&v, p + 4 * t, 4);
      out[t] = v;
    }
  }
}

namespace {

[[noreturn]] void Bad(const std::string& where, const std::string& what) {
  throw EngineError(FailureCause::kDataError, where + ": " + what);
}

int64_t RequireInt(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number_integer()) {
    Bad(where, std::string("missing or non-integer \"") + key + "\"");
  }
  return j[key].get<int64_t>();
}

}  // namespace

PackedDataset PackedDataset::Open(const std::string& dir, bool verify_checksums) {
  const std::string manifest_path = dir + "/manifest.json";
  std::ifstream in(manifest_path);
  if (!in) Bad(manifest_path, "cannot open (the dataset is incomplete or missing)");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    Bad(manifest_path, std::string("invalid JSON: ") + e.what());
  }
  if (!m.is_object() || m.value("format", "") != "bert-packed-dataset") {
    Bad(manifest_path, "\"format\" is not \"bert-packed-dataset\"");
  }
  if (RequireInt(m, "format_version", manifest_path) != 1) {
    Bad(manifest_path, "unsupported format_version " + m["format_version"].dump() + " (expected 1)");
  }
  PackedDataset ds;
  ds.dir_ = dir;
  const std::string dtype = m.value("dtype", "");
  int token_bytes = 0;
  if (dtype == "uint16") token_bytes = 2;
  else if (dtype == "uint32") token_bytes = 4;
  else Bad(manifest_path, "\"dtype\" must be \"uint16\" or \"uint32\", got \"" + dtype + "\"");
  ds.seq_len_ = RequireInt(m, "seq_len", manifest_path);
  if (ds.seq_len_ < 2) Bad(manifest_path, "\"seq_len\" must be at least 2");
  ds.vocab_size_ = RequireInt(m, "vocab_size", manifest_path);
  if (ds.vocab_size_ < 5) Bad(manifest_path, "\"vocab_size\" must be at least 5");
  if (token_bytes == 2 && ds.vocab_size_ > 65536) {
    Bad(manifest_path, "dtype uint16 cannot hold vocab_size " + std::to_string(ds.vocab_size_));
  }
  ds.tokenizer_sha256_ = m.value("tokenizer_sha256", "");
  if (!m.contains("special_token_ids")) Bad(manifest_path, "missing \"special_token_ids\"");
  const auto& sp = m["special_token_ids"];
  const std::string sp_where = manifest_path + ": special_token_ids";
  ds.special_ids_.pad = RequireInt(sp, "pad", sp_where);
  ds.special_ids_.unk = RequireInt(sp, "unk", sp_where);
  ds.special_ids_.cls = RequireInt(sp, "cls", sp_where);
  ds.special_ids_.sep = RequireInt(sp, "sep", sp_where);
  ds.special_ids_.mask = RequireInt(sp, "mask", sp_where);
  for (int64_t id : {ds.special_ids_.pad, ds.special_ids_.unk, ds.special_ids_.cls,
                     ds.special_ids_.sep, ds.special_ids_.mask}) {
    if (id < 0 || id >= ds.vocab_size_) Bad(sp_where, "id " + std::to_string(id) + " outside the vocabulary");
  }
  if (!m.contains("splits") || !m["splits"].is_object()) Bad(manifest_path, "missing \"splits\"");
  for (const auto& [name, split_json] : m["splits"].items()) {
    const std::string where = manifest_path + ": splits." + name;
    PackedSplit split;
    split.seq_len_ = ds.seq_len_;
    split.token_bytes_ = token_bytes;
    if (!split_json.contains("shards") || !split_json["shards"].is_array()) Bad(where, "missing \"shards\"");
    for (const auto& shard_json : split_json["shards"]) {
      const std::string file = shard_json.value("file", "");
      if (file.empty() || file.find('/') != std::string::npos) Bad(where, "shard without a plain \"file\" name");
      const std::string path = dir + "/" + file;
      const int64_t blocks = RequireInt(shard_json, "blocks", where + " (" + file + ")");
      PackedSplit::Shard shard;
      shard.file = MappedFile::Open(path);
      shard.first_block = split.total_blocks_;
      shard.blocks = blocks;
      const uint64_t expected = static_cast<uint64_t>(blocks) * ds.seq_len_ * token_bytes;
      if (shard.file->size() != expected) {
        throw EngineError(FailureCause::kArtifactCorrupt,
                          path + ": size " + std::to_string(shard.file->size()) + " bytes, expected " +
                              std::to_string(expected) + " (" + std::to_string(blocks) + " blocks of " +
                              std::to_string(ds.seq_len_) + " " + dtype + "): truncated or corrupt shard");
      }
      if (verify_checksums) {
        const std::string want = shard_json.value("sha256", "");
        Sha256Stream sha;
        sha.Update(shard.file->data(), shard.file->size());
        const std::string got = sha.HexDigest();
        if (!want.empty() && want != got) {
          throw EngineError(FailureCause::kArtifactCorrupt,
                            path + ": SHA-256 " + got + " does not match the manifest's " + want);
        }
      }
      if (blocks > 0) {
        split.shard_of_block_start_.push_back(split.total_blocks_);
        split.shards_.push_back(std::move(shard));
      }
      split.total_blocks_ += blocks;
    }
    if (split_json.contains("blocks") && split_json["blocks"].is_number_integer() &&
        split_json["blocks"].get<int64_t>() != split.total_blocks_) {
      Bad(where, "\"blocks\" " + split_json["blocks"].dump() + " differs from the shards' sum " +
                     std::to_string(split.total_blocks_));
    }
    ds.splits_.emplace_back(name, std::move(split));
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
  throw EngineError(FailureCause::kDataError, dir_ + "/manifest.json: no split \"" + name + "\"");
}

}  // namespace bert::engine
