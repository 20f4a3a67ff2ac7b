// Sha256: a dependency-free SHA-256 (FIPS 180-4), as lowercase hex.
//
// The one SHA-256 of the on-disk formats: shard checksums in a packed
// dataset's manifest and the engine's checkpoint manifests. The service side
// (common/sha256.h) keeps OpenSSL's, which is several times faster on large
// artifacts; both give the same digests (tests/formats/sha256_test.cc).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "formats/result.h"

namespace bert::formats {

// Incremental hasher. Not thread-safe.
class Sha256 {
 public:
  Sha256() { Reset(); }
  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // The digest of everything updated so far, as 64 hex chars; resets the hasher.
  std::string HexDigest();

 private:
  void Reset();
  void Block(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string Sha256Hex(std::string_view data);

// The SHA-256 of a file's contents, read in 1 MiB chunks; its size into
// `size_bytes` when given. kNotFound or kIoError naming the file.
Result<std::string> Sha256File(const std::string& path, uint64_t* size_bytes = nullptr);

}  // namespace bert::formats
