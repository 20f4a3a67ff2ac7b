// Sha256Stream: a dependency-free SHA-256 (FIPS 180-4) for checkpoint manifests.
//
// The engine may not link OpenSSL (it depends only on libtorch and the standard
// library), so it carries this small implementation. Not thread-safe per object.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace bert::engine {

class Sha256Stream {
 public:
  Sha256Stream();
  void Update(const void* data, size_t size);
  // The lowercase hex digest; the stream must not be updated afterwards.
  std::string HexDigest();

 private:
  void Block(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// SHA-256 of a file's contents, and its size; throws EngineError if unreadable.
std::string Sha256OfFile(const std::string& path, uint64_t* size_bytes = nullptr);

}  // namespace bert::engine
