// Splits an InputStream into lines ('\n'-terminated; a trailing '\r' is removed).
// A line longer than `max_line_bytes` (counted after decompression, so a
// compressed file without newlines hits the same bound) is an INVALID_ARGUMENT
// error naming the file, the line and the bound; the buffer never grows past it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "data/input_stream.h"

namespace bert::data {

// Not thread-safe. A returned line stays valid until the next call to Next().
class LineReader {
 public:
  static constexpr size_t kDefaultMaxLineBytes = 16 << 20;

  explicit LineReader(std::unique_ptr<InputStream> stream, size_t buffer_bytes = 1 << 20,
                      size_t max_line_bytes = kDefaultMaxLineBytes);

  // Sets *line to the next line and returns true, or returns false at the end.
  absl::StatusOr<bool> Next(std::string_view* line);
  // 1-based number of the line last returned, counted from the stream's start.
  uint64_t line_number() const { return line_number_; }
  const InputStream& stream() const { return *stream_; }

 private:
  std::unique_ptr<InputStream> stream_;
  size_t max_line_bytes_;
  std::string buffer_;
  size_t begin_ = 0;  // start of unread data in buffer_
  size_t end_ = 0;    // end of valid data in buffer_
  bool eof_ = false;
  uint64_t line_number_ = 0;
};

}  // namespace bert::data
