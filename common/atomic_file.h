// Durable writes: a file is either complete at its final path or absent.
//
// Data goes to "<path>.tmp-<pid>-<n>", is fsync'ed, renamed over <path>, and the
// parent directory is fsync'ed. A crash at any point leaves at most a stray
// temporary file, never a half-written file under the final name.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace bert {

// Streams data into a temporary file; Commit() publishes it atomically.
// Destroying an uncommitted writer removes the temporary file. Not thread-safe.
class AtomicFileWriter {
 public:
  // Opens the temporary file beside `path` (whose directory must exist).
  static absl::StatusOr<AtomicFileWriter> Open(std::string path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  ~AtomicFileWriter();

  absl::Status Append(std::string_view data);
  // fsync, rename to the final path, fsync the directory.
  absl::Status Commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  AtomicFileWriter(std::string path, std::string temp_path, int fd);

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t bytes_written_ = 0;
};

// Writes `contents` to `path` atomically (see above).
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

// Reads a whole file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// fsync of a directory, so that a rename inside it is durable.
absl::Status SyncDirectory(const std::string& dir);

}  // namespace bert
