#include "formats/dataset_manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>

namespace bert::formats {
namespace {

using nlohmann::json;

// The byte size of a shard must fit a file offset (off_t), so that blocks x
// block bytes, and every offset into the mapping, is exact in uint64_t.
constexpr uint64_t kMaxShardBytes = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Split block counts and indices must fit int64_t (the engine's index type).
constexpr uint64_t kMaxBlocks = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// A non-negative integer field, or nullopt when it is absent or anything else.
std::optional<uint64_t> Uint(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0) {
    return static_cast<uint64_t>(it->get<int64_t>());
  }
  return std::nullopt;
}

// Errors of one manifest: "WHERE: FIELD: what".
struct Checker {
  const std::string& where;
  Error Malformed(const std::string& field, const std::string& what) const {
    return Error{ErrorCode::kMalformed, where + ": " + field + ": " + what};
  }
  Error NotUint(const std::string& field) const {
    return Malformed(field, "missing or not a non-negative integer");
  }
};

}  // namespace

json DatasetManifest::ToJson() const {
  json split_json = json::object();
  for (const auto& [name, split] : splits) {
    json shards = json::array();
    for (const DatasetShard& s : split.shards) {
      shards.push_back({{"file", s.file}, {"blocks", s.blocks}, {"sha256", s.sha256}});
    }
    split_json[name] = {{"blocks", split.blocks}, {"shards", std::move(shards)}};
  }
  return {{"format", kPackedDatasetFormat},
          {"format_version", kPackedDatasetFormatVersion},
          {"dtype", dtype},
          {"seq_len", seq_len},
          {"vocab_size", vocab_size},
          {"tokenizer_sha256", tokenizer_sha256},
          {"special_token_ids", special_token_ids},
          {"shuffle_seed", shuffle_seed},
          {"shuffle", shuffle},
          {"split_long_documents", split_long_documents},
          {"splits", std::move(split_json)},
          {"stats",
           {{"documents", stats.documents},
            {"tokens", stats.tokens},
            {"tokens_truncated", stats.tokens_truncated},
            {"tokens_dropped_remainder", stats.tokens_dropped_remainder}}}};
}

Result<DatasetManifest> DatasetManifest::FromJson(const json& j, const std::string& where) {
  const Checker c{where};
  if (!j.is_object()) return Error{ErrorCode::kMalformed, where + ": not a JSON object"};
  if (!j.contains("format") || !j["format"].is_string() ||
      j["format"].get<std::string>() != kPackedDatasetFormat) {
    return Error{ErrorCode::kUnsupported, where + ": format: not a packed dataset (format is not '" +
                                              kPackedDatasetFormat + "')"};
  }
  const std::optional<uint64_t> version = Uint(j, "format_version");
  if (!version || *version != static_cast<uint64_t>(kPackedDatasetFormatVersion)) {
    return Error{ErrorCode::kUnsupported,
                 where + ": format_version: " + (j.contains("format_version") ? j["format_version"].dump() : "missing") +
                     " is not supported (this build reads version " +
                     std::to_string(kPackedDatasetFormatVersion) + ")"};
  }

  DatasetManifest m;
  if (!j.contains("dtype") || !j["dtype"].is_string()) return c.Malformed("dtype", "missing");
  m.dtype = j["dtype"].get<std::string>();
  if (m.dtype != "uint16" && m.dtype != "uint32") {
    return c.Malformed("dtype", "must be \"uint16\" or \"uint32\", not \"" + m.dtype + "\"");
  }
  const std::optional<uint64_t> seq_len = Uint(j, "seq_len");
  if (!seq_len) return c.NotUint("seq_len");
  if (*seq_len < kMinSeqLen || *seq_len > kMaxSeqLen) {
    return c.Malformed("seq_len", std::to_string(*seq_len) + " is outside [" +
                                      std::to_string(kMinSeqLen) + ", " +
                                      std::to_string(kMaxSeqLen) + "]");
  }
  m.seq_len = static_cast<uint32_t>(*seq_len);
  const std::optional<uint64_t> vocab_size = Uint(j, "vocab_size");
  if (!vocab_size) return c.NotUint("vocab_size");
  m.vocab_size = *vocab_size;
  const uint64_t max_vocab = uint64_t{1} << (8 * m.dtype_bytes());
  if (m.vocab_size == 0 || m.vocab_size > max_vocab) {
    return c.Malformed("vocab_size", std::to_string(m.vocab_size) + " ids do not fit dtype " +
                                         m.dtype + " (1 to " + std::to_string(max_vocab) + ")");
  }
  if (j.contains("tokenizer_sha256")) {
    if (!j["tokenizer_sha256"].is_string()) return c.Malformed("tokenizer_sha256", "not a string");
    m.tokenizer_sha256 = j["tokenizer_sha256"].get<std::string>();
  }
  if (j.contains("shuffle_seed")) {
    const std::optional<uint64_t> seed = Uint(j, "shuffle_seed");
    if (!seed) return c.NotUint("shuffle_seed");
    m.shuffle_seed = *seed;
  }
  if (j.contains("shuffle")) {
    if (!j["shuffle"].is_string()) return c.Malformed("shuffle", "not a string");
    m.shuffle = j["shuffle"].get<std::string>();
  }
  if (j.contains("split_long_documents")) {
    if (!j["split_long_documents"].is_boolean()) {
      return c.Malformed("split_long_documents", "not true or false");
    }
    m.split_long_documents = j["split_long_documents"].get<bool>();
  }
  if (j.contains("special_token_ids")) {
    const json& sp = j["special_token_ids"];
    if (!sp.is_object()) return c.Malformed("special_token_ids", "not an object");
    for (const auto& [name, value] : sp.items()) {
      const std::string field = "special_token_ids." + name;
      const std::optional<uint64_t> id = Uint(sp, name.c_str());
      if (!id) return c.NotUint(field);
      if (*id >= m.vocab_size) {
        return c.Malformed(field, "id " + std::to_string(*id) + " is outside the vocabulary (" +
                                      std::to_string(m.vocab_size) + " ids)");
      }
      m.special_token_ids[name] = static_cast<uint32_t>(*id);
    }
  }

  if (!j.contains("splits") || !j["splits"].is_object()) return c.Malformed("splits", "missing");
  const uint64_t block_bytes = m.block_bytes();
  for (const auto& [name, sj] : j["splits"].items()) {
    const std::string field = "splits." + name;
    if (!sj.is_object()) return c.Malformed(field, "not an object");
    DatasetSplit split;
    const std::optional<uint64_t> blocks = Uint(sj, "blocks");
    if (!blocks) return c.NotUint(field + ".blocks");
    split.blocks = *blocks;
    if (!sj.contains("shards") || !sj["shards"].is_array()) {
      return c.Malformed(field + ".shards", "missing or not an array");
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < sj["shards"].size(); ++i) {
      const json& shj = sj["shards"][i];
      const std::string shard_field = field + ".shards[" + std::to_string(i) + "]";
      if (!shj.is_object()) return c.Malformed(shard_field, "not an object");
      DatasetShard shard;
      if (!shj.contains("file") || !shj["file"].is_string()) {
        return c.Malformed(shard_field + ".file", "missing or not a string");
      }
      shard.file = shj["file"].get<std::string>();
      if (shard.file.empty() || shard.file == "." || shard.file == ".." ||
          shard.file.find('/') != std::string::npos || shard.file.find('\0') != std::string::npos) {
        return c.Malformed(shard_field + ".file", "'" + shard.file + "' is not a plain file name");
      }
      const std::optional<uint64_t> shard_blocks = Uint(shj, "blocks");
      if (!shard_blocks) return c.NotUint(shard_field + ".blocks");
      shard.blocks = *shard_blocks;
      if (shard.blocks > kMaxShardBytes / block_bytes) {
        return c.Malformed(shard_field + ".blocks",
                           std::to_string(shard.blocks) + " blocks of " +
                               std::to_string(block_bytes) + " bytes overflow a file size");
      }
      if (shard.blocks > kMaxBlocks - sum) {
        return c.Malformed(shard_field + ".blocks", "the split's block count overflows");
      }
      sum += shard.blocks;
      if (shj.contains("sha256")) {
        if (!shj["sha256"].is_string()) return c.Malformed(shard_field + ".sha256", "not a string");
        shard.sha256 = shj["sha256"].get<std::string>();
      }
      split.shards.push_back(std::move(shard));
    }
    if (sum != split.blocks) {
      return c.Malformed(field + ".blocks", std::to_string(split.blocks) +
                                                " differs from the shards' sum " +
                                                std::to_string(sum));
    }
    m.splits[name] = std::move(split);
  }
  if (j.contains("stats")) {
    const json& st = j["stats"];
    if (!st.is_object()) return c.Malformed("stats", "not an object");
    for (auto [key, out] : {std::pair{"documents", &m.stats.documents},
                            std::pair{"tokens", &m.stats.tokens},
                            std::pair{"tokens_truncated", &m.stats.tokens_truncated},
                            std::pair{"tokens_dropped_remainder", &m.stats.tokens_dropped_remainder}}) {
      if (!st.contains(key)) continue;
      const std::optional<uint64_t> v = Uint(st, key);
      if (!v) return c.NotUint(std::string("stats.") + key);
      *out = *v;
    }
  }
  return m;
}

Result<DatasetManifest> DatasetManifest::Parse(std::string_view text, const std::string& where) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{ErrorCode::kMalformed, where + ": not valid JSON"};
  return FromJson(j, where);
}

Result<DatasetManifest> DatasetManifest::Read(const std::string& path) {
  // O_NONBLOCK: a FIFO in the manifest's place must not block the open; it is
  // refused below as not a regular file, as is a device such as /dev/zero.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return Error{err == ENOENT || err == ENOTDIR ? ErrorCode::kNotFound : ErrorCode::kIoError,
                 path + ": cannot open (the dataset is incomplete or missing): " +
                     std::strerror(err),
                 err};
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    return Error{ErrorCode::kIoError, path + ": cannot stat: " + std::strerror(err), err};
  }
  if (!S_ISREG(st.st_mode)) return Error{ErrorCode::kIoError, path + ": not a regular file"};
  if (static_cast<uint64_t>(st.st_size) > kMaxDatasetManifestBytes) {
    return Error{ErrorCode::kMalformed, path + ": " + std::to_string(st.st_size) +
                                            " bytes, over the limit of " +
                                            std::to_string(kMaxDatasetManifestBytes)};
  }
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      return Error{ErrorCode::kIoError, path + ": read error: " + std::strerror(err), err};
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxDatasetManifestBytes) {  // it grew since the fstat
      return Error{ErrorCode::kMalformed,
                   path + ": over the limit of " + std::to_string(kMaxDatasetManifestBytes) + " bytes"};
    }
  }
  return Parse(text, path);
}

}  // namespace bert::formats
