#include "data/input_stream.h"

#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/posix_error.h"
#include "common/status_macros.h"

namespace bert::data {
namespace {

constexpr size_t kRawBufferBytes = 1 << 20;

// Owns a file descriptor and reads [pos, end) with pread.
class RawFile {
 public:
  RawFile(std::string path, int fd, uint64_t pos, uint64_t end)
      : path_(std::move(path)), fd_(fd), pos_(pos), end_(end) {}
  ~RawFile() { ::close(fd_); }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;

  absl::StatusOr<size_t> Read(char* buf, size_t n) {
    if (pos_ >= end_) return 0;
    if (n > end_ - pos_) n = end_ - pos_;
    while (true) {
      ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(pos_));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return PosixError("read", path_, errno);
      pos_ += got;
      consumed_ += got;
      return static_cast<size_t>(got);
    }
  }
  const std::string& path() const { return path_; }
  uint64_t consumed() const { return consumed_; }

 private:
  std::string path_;
  int fd_;
  uint64_t pos_;
  uint64_t end_;
  uint64_t consumed_ = 0;
};

class PlainStream final : public InputStream {
 public:
  explicit PlainStream(std::unique_ptr<RawFile> file) : file_(std::move(file)) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override { return file_->Read(buf, n); }
  uint64_t raw_bytes_read() const override { return file_->consumed(); }
  const std::string& path() const override { return file_->path(); }

 private:
  std::unique_ptr<RawFile> file_;
};

// gzip (and zlib) with auto-detected headers; concatenated members are read in turn.
class GzipStream final : public InputStream {
 public:
  explicit GzipStream(std::unique_ptr<RawFile> file)
      : file_(std::move(file)), in_(kRawBufferBytes) {
    inflateInit2(&z_, 15 + 32);
  }
  ~GzipStream() override { inflateEnd(&z_); }

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    if (done_) return 0;
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = static_cast<uInt>(n);
    while (z_.avail_out == n) {
      if (z_.avail_in == 0) {
        BERT_ASSIGN_OR_RETURN(size_t got, file_->Read(in_.data(), in_.size()));
        if (got == 0) {
          if (in_member_) {
            return absl::DataLossError(
                absl::StrCat(file_->path(), ": truncated gzip stream (unexpected end of file)"));
          }
          done_ = true;
          break;
        }
        z_.next_in = reinterpret_cast<Bytef*>(in_.data());
        z_.avail_in = static_cast<uInt>(got);
      }
      in_member_ = true;
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        in_member_ = false;
        inflateReset(&z_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return absl::DataLossError(absl::StrCat(file_->path(), ": corrupt gzip data (",
                                                z_.msg ? z_.msg : "inflate failed", ")"));
      }
    }
    return n - z_.avail_out;
  }
  uint64_t raw_bytes_read() const override { return file_->consumed(); }
  const std::string& path() const override { return file_->path(); }

 private:
  std::unique_ptr<RawFile> file_;
  std::vector<char> in_;
  z_stream z_{};
  bool in_member_ = false;
  bool done_ = false;
};

// zstd; concatenated frames are read in turn.
class ZstdStream final : public InputStream {
 public:
  explicit ZstdStream(std::unique_ptr<RawFile> file)
      : file_(std::move(file)), in_(ZSTD_DStreamInSize()), dctx_(ZSTD_createDCtx()) {}
  ~ZstdStream() override { ZSTD_freeDCtx(dctx_); }

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      if (input_.pos == input_.size) {
        BERT_ASSIGN_OR_RETURN(size_t got, file_->Read(in_.data(), in_.size()));
        if (got == 0) {
          if (last_hint_ != 0) {
            return absl::DataLossError(
                absl::StrCat(file_->path(), ": truncated zstd stream (unexpected end of file)"));
          }
          return 0;
        }
        input_ = ZSTD_inBuffer{in_.data(), got, 0};
      }
      size_t hint = ZSTD_decompressStream(dctx_, &out, &input_);
      if (ZSTD_isError(hint)) {
        return absl::DataLossError(
            absl::StrCat(file_->path(), ": corrupt zstd data (", ZSTD_getErrorName(hint), ")"));
      }
      last_hint_ = hint;
    }
    return out.pos;
  }
  uint64_t raw_bytes_read() const override { return file_->consumed(); }
  const std::string& path() const override { return file_->path(); }

 private:
  std::unique_ptr<RawFile> file_;
  std::vector<char> in_;
  ZSTD_DCtx* dctx_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  size_t last_hint_ = 0;
};

}  // namespace

absl::StatusOr<Compression> ResolveCompression(const std::string& setting,
                                               const std::string& path) {
  if (setting.empty() || setting == "auto") {
    if (absl::EndsWith(path, ".gz")) return Compression::kGzip;
    if (absl::EndsWith(path, ".zst") || absl::EndsWith(path, ".zstd")) return Compression::kZstd;
    return Compression::kNone;
  }
  if (setting == "none") return Compression::kNone;
  if (setting == "gzip") return Compression::kGzip;
  if (setting == "zstd") return Compression::kZstd;
  return absl::InvalidArgumentError(absl::StrCat("compression '", setting, "' for ", path,
                                                 ": expected auto, none, gzip or zstd"));
}

bool IsUnderRoot(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

absl::StatusOr<std::unique_ptr<InputStream>> OpenInputStream(const std::string& path,
                                                             Compression compression,
                                                             uint64_t start, uint64_t end,
                                                             const std::vector<std::string>& roots) {
  // O_NONBLOCK: a FIFO must not hold this thread until a writer comes.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return PosixError("open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return PosixError("stat", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file (corpus inputs must be regular files)"));
  }
  if (!roots.empty()) {
    // Where the descriptor really points, whatever the path's links say now.
    std::error_code ec;
    const std::string opened =
        std::filesystem::read_symlink(absl::StrCat("/proc/self/fd/", fd), ec).string();
    bool allowed = false;
    for (const std::string& root : roots) allowed = allowed || (!ec && IsUnderRoot(opened, root));
    if (!allowed) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": opened ", ec ? "an unknown file" : opened,
          ", which is outside this agent's data roots (", absl::StrJoin(roots, ", "),
          "); the path changed after it was checked"));
    }
  }
  if (compression != Compression::kNone && start != 0) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": compressed files are read whole"));
  }
  auto file = std::make_unique<RawFile>(path, fd, start, end);
  switch (compression) {
    case Compression::kNone:
      return std::make_unique<PlainStream>(std::move(file));
    case Compression::kGzip:
      return std::make_unique<GzipStream>(std::move(file));
    case Compression::kZstd:
      return std::make_unique<ZstdStream>(std::move(file));
  }
  return absl::InternalError("unknown compression");
}

}  // namespace bert::data
