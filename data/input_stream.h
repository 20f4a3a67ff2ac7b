// Byte streams over corpus files: plain (optionally a byte range), gzip or zstd.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace bert::data {

enum class Compression { kNone, kGzip, kZstd };

// "auto" picks by extension (.gz, .zst/.zstd); "none", "gzip", "zstd" force one.
absl::StatusOr<Compression> ResolveCompression(const std::string& setting, const std::string& path);

// Sequential reader of a file's (decompressed) bytes. Not thread-safe; one per reader.
class InputStream {
 public:
  virtual ~InputStream() = default;
  // Reads up to `n` bytes into `buf`; returns 0 at the end. Errors name the file.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
  // Bytes consumed from the underlying file so far (compressed bytes for gzip/zstd).
  virtual uint64_t raw_bytes_read() const = 0;
  // The file's path, for error messages.
  virtual const std::string& path() const = 0;
};

// Opens `path`, which must be a regular file (a device, FIFO, socket or
// directory is an INVALID_ARGUMENT error, and opening never blocks). For kNone,
// reads bytes [start, end) (end = UINT64_MAX: to the end of the file);
// compressed files are always read whole (start must be 0). With `roots`
// (canonical absolute directories), the file actually opened must lie under
// one of them: checked on the open descriptor, so a path whose links change
// between planning and opening is refused rather than followed out.
absl::StatusOr<std::unique_ptr<InputStream>> OpenInputStream(
    const std::string& path, Compression compression, uint64_t start = 0,
    uint64_t end = UINT64_MAX, const std::vector<std::string>& roots = {});

// Whether the absolute, normal `path` is `root` or below it.
bool IsUnderRoot(const std::string& path, const std::string& root);

}  // namespace bert::data
