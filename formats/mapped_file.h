// MappedFile: a read-only memory mapping of a whole file, unmapped on destruction.
// Immutable after Open(); thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "formats/result.h"

namespace bert::formats {

class MappedFile {
 public:
  // Maps `path` (an empty file maps to data() == nullptr). kNotFound or
  // kIoError naming the file.
  static Result<std::shared_ptr<const MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Tells the kernel that reads will be random (no read-ahead); a hint only.
  void AdviseRandomAccess() const;

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace bert::formats
