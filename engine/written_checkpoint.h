// WrittenCheckpoint: what the checkpoint writer reports once a checkpoint is
// complete on disk. Plain data, no libtorch.
#pragma once

#include <cstdint>
#include <string>

namespace bert::engine {

struct WrittenCheckpoint {
  int64_t step = 0;
  std::string path;
  uint64_t size_bytes = 0;      // all files
  std::string manifest_sha256;  // SHA-256 of manifest.json
};

}  // namespace bert::engine
