// 128-bit content hash of a document (the first half of its SHA-256), used for
// exact deduplication across all sources.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace bert::data {

struct DocHash {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const DocHash& a, const DocHash& b) {
    return a.lo == b.lo && a.hi == b.hi;
  }
};

// Hashes for hash tables: the hash is already uniform, so its low word will do.
struct DocHashHasher {
  size_t operator()(const DocHash& h) const { return static_cast<size_t>(h.lo); }
};

DocHash HashDocument(std::string_view text);

}  // namespace bert::data
