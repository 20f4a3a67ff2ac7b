#include "data/line_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace bert::data {

LineReader::LineReader(std::unique_ptr<InputStream> stream, size_t buffer_bytes,
                       size_t max_line_bytes)
    : stream_(std::move(stream)),
      max_line_bytes_(std::max<size_t>(1, max_line_bytes)),
      // One byte past the bound holds the line's '\n' (or proves it too long).
      buffer_(std::max<size_t>(1, std::min(buffer_bytes, max_line_bytes_ + 1)), '\0') {}

absl::StatusOr<bool> LineReader::Next(std::string_view* line) {
  size_t scan_from = begin_;
  while (true) {
    const char* nl =
        static_cast<const char*>(std::memchr(buffer_.data() + scan_from, '\n', end_ - scan_from));
    if (nl != nullptr) {
      size_t len = nl - (buffer_.data() + begin_);
      *line = std::string_view(buffer_.data() + begin_, len);
      begin_ += len + 1;
      break;
    }
    if (eof_) {
      if (begin_ == end_) return false;
      *line = std::string_view(buffer_.data() + begin_, end_ - begin_);
      begin_ = end_;
      break;
    }
    // No newline in the buffered data: make room (compact, or grow for a long line) and read.
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buffer_.size()) {
      if (end_ > max_line_bytes_) {
        return absl::InvalidArgumentError(absl::StrCat(
            stream_->path(), ": line ", line_number_ + 1, " is longer than ", max_line_bytes_,
            " bytes (the bound on a corpus line's length, counted after decompression)"));
      }
      buffer_.resize(std::min(buffer_.size() * 2, max_line_bytes_ + 1));
    }
    scan_from = end_;
    BERT_ASSIGN_OR_RETURN(size_t got, stream_->Read(buffer_.data() + end_, buffer_.size() - end_));
    if (got == 0) eof_ = true;
    end_ += got;
  }
  if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
  ++line_number_;
  return true;
}

}  // namespace bert::data
