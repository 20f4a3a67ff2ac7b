#include "server/artifact_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/posix_error.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "protocol/artifact_manifest.h"

namespace bert::server {
namespace fs = std::filesystem;
namespace {

int64_t SizeOf(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

// fsync of one file or directory.
absl::Status SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return PosixError("open", path, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : PosixError("fsync", path, err);
}

// fsync of `path` and, for a directory, of everything under it, so that its
// bytes are on disk before a record names them.
absl::Status SyncTree(const std::string& path, bool directory) {
  if (!directory) return SyncPath(path, false);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    const bool dir = it->is_directory(ec) && !it->is_symlink(ec);
    BERT_RETURN_IF_ERROR(SyncPath(it->path().string(), dir));
  }
  if (ec) return PosixError("list", path, ec.value());
  return SyncPath(path, true);
}

}  // namespace

absl::Status ArtifactStore::Upload::WriteError(const std::string& op, const std::string& path,
                                             int err) {
  if (err == ENOSPC || err == EFBIG || err == EDQUOT) {
    std::error_code ec;  // a torn upload is worth nothing: free the space it holds
    fs::remove_all(partial_, ec);
    fs::remove(ContentFile(partial_), ec);
    return absl::ResourceExhaustedError(absl::StrCat(
        "artifact ", header_.id(), ": the controller's disk is full (", op, " ", path, ": ",
        std::strerror(err), "); the partial upload was discarded"));
  }
  return PosixError(op, path, err);
}

absl::Status ArtifactStore::CheckId(const std::string& id, const char* what) {
  if (id.empty() || id.size() > 512) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": must be 1 to 512 characters"));
  }
  for (absl::string_view part : absl::StrSplit(id, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(what, " '", id, "': empty, '.' or '..' part"));
    }
    for (char c : part) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " '", id, "': character '", std::string(1, c), "' not allowed"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ArtifactStore::Upload> ArtifactStore::Upload::Begin(ArtifactStore* store,
                                                                   const v1::Artifact& header) {
  BERT_RETURN_IF_ERROR(CheckId(header.id()));
  if (header.size_bytes() < 0) return absl::InvalidArgumentError("artifact.size_bytes: negative");
  if (header.sha256().size() != 64) {
    return absl::InvalidArgumentError("artifact.sha256: must be 64 hex characters");
  }
  const std::string partial = store->PartialPath(header.id());
  const std::string content = ContentFile(partial);
  std::error_code ec;
  if (ReadFile(content).value_or("") != header.sha256()) {
    fs::remove_all(partial, ec);  // another content's bytes: never resume on them
    fs::create_directories(fs::path(partial).parent_path(), ec);
    BERT_RETURN_IF_ERROR(WriteFileAtomically(content, header.sha256()));
  }
  fs::create_directories(header.is_directory() ? fs::path(partial) : fs::path(partial).parent_path(), ec);
  if (ec) return PosixError("mkdir", partial, ec.value());
  return Upload(store, header, partial);
}

absl::Status ArtifactStore::Upload::Write(const v1::ArtifactChunk& chunk) {
  if (Sha256Hex(chunk.data()) != chunk.chunk_sha256()) {
    return absl::DataLossError(absl::StrCat("artifact ", header_.id(), ": chunk at offset ",
                                            chunk.offset(), " fails its sha256"));
  }
  std::string path = partial_;
  if (header_.is_directory()) {
    BERT_RETURN_IF_ERROR(CheckId(chunk.relative_path(), "relative_path"));
    path = absl::StrCat(partial_, "/", chunk.relative_path());
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
  } else if (!chunk.relative_path().empty()) {
    return absl::InvalidArgumentError("relative_path: set on a file artifact");
  }
  const int64_t held = SizeOf(path);
  if (chunk.offset() < 0 || chunk.offset() > held) {
    resume_offset_ = held;
    return absl::FailedPreconditionError(absl::StrCat(
        "artifact ", header_.id(), " ", chunk.relative_path(), ": chunk at offset ", chunk.offset(),
        " but ", held, " bytes are held; resume at offset ", held));
  }
  const int64_t end = chunk.offset() + static_cast<int64_t>(chunk.data().size());
  if (!header_.is_directory() && end > header_.size_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("artifact ", header_.id(), ": chunk ends at ",
                                                   end, ", past size_bytes ", header_.size_bytes()));
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return WriteError("open", path, errno);
  absl::Status status;
  if (::ftruncate(fd, chunk.offset()) != 0) status = WriteError("truncate", path, errno);
  size_t written = 0;
  while (status.ok() && written < chunk.data().size()) {
    ssize_t n = ::pwrite(fd, chunk.data().data() + written, chunk.data().size() - written,
                         chunk.offset() + static_cast<off_t>(written));
    if (n < 0) {
      if (errno == EINTR) continue;
      status = WriteError("write", path, errno);
      break;
    }
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes_received_ += static_cast<int64_t>(written);
  return status;
}

absl::StatusOr<v1::Artifact> ArtifactStore::Upload::Finish() {
  std::string sha;
  int64_t size = 0;
  if (header_.is_directory()) {
    BERT_ASSIGN_OR_RETURN(protocol::LocalArtifact received,
                          protocol::DescribeLocalArtifact(partial_));
    sha = received.sha256;
    size = received.size_bytes;
  } else {
    size = SizeOf(partial_);
    if (size == header_.size_bytes()) {
      BERT_ASSIGN_OR_RETURN(sha, Sha256File(partial_));
    }
  }
  if (size != header_.size_bytes() || sha != header_.sha256()) {
    std::error_code ec;
    if (size >= header_.size_bytes()) {  // complete but wrong: discard
      fs::remove_all(partial_, ec);
      fs::remove(ContentFile(partial_), ec);
    }
    return absl::DataLossError(absl::StrCat("artifact ", header_.id(), ": received ", size,
                                            " bytes with sha256 ", sha.empty() ? "-" : sha,
                                            ", expected ", header_.size_bytes(), " bytes with ",
                                            header_.sha256()));
  }
  // Durable before published, and published before the caller records it.
  if (absl::Status synced = SyncTree(partial_, header_.is_directory()); !synced.ok()) {
    if (absl::IsResourceExhausted(synced)) return WriteError("fsync", partial_, ENOSPC);
    return synced;
  }
  const std::string final_path = store_->PathOf(header_.id());
  std::error_code ec;
  fs::create_directories(fs::path(final_path).parent_path(), ec);
  if (ec) return WriteError("mkdir", fs::path(final_path).parent_path().string(), ec.value());
  fs::remove_all(final_path, ec);  // an earlier upload of this same id
  fs::rename(partial_, final_path, ec);
  if (ec) return WriteError("rename", final_path, ec.value());
  fs::remove(ContentFile(partial_), ec);
  BERT_RETURN_IF_ERROR(SyncDirectory(fs::path(final_path).parent_path().string()));
  v1::Artifact artifact = header_;
  artifact.set_uri("bertd://" + header_.id());
  return artifact;
}

absl::StatusOr<std::map<std::string, int64_t>> ArtifactStore::HeldBytes(
    const std::string& id, const std::string& sha256) const {
  BERT_RETURN_IF_ERROR(CheckId(id));
  std::map<std::string, int64_t> held;
  const std::string partial = PartialPath(id);
  if (sha256.empty() || ReadFile(ContentFile(partial)).value_or("") != sha256) return held;
  std::error_code ec;
  if (fs::is_regular_file(partial, ec)) {
    held[""] = SizeOf(partial);
  } else if (fs::is_directory(partial, ec)) {
    for (const std::string& rel : protocol::ListManifestFiles(partial)) {
      held[rel] = SizeOf(partial + "/" + rel);
    }
  }
  return held;
}

absl::StatusOr<int> ArtifactStore::OpenBeneath(const std::string& root, const std::string& relative) {
  BERT_RETURN_IF_ERROR(CheckId(relative, "path"));
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return PosixError("open", root, errno);
  std::vector<std::string> parts = absl::StrSplit(relative, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    // O_NONBLOCK: a FIFO in the way must not hold the handler (checked below).
    const int next = ::openat(dir, parts[i].c_str(),
                              O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? O_NONBLOCK : O_DIRECTORY));
    const int err = errno;
    ::close(dir);
    if (next < 0) {
      const std::string where = absl::StrCat(root, "/", relative);
      if (err == ELOOP || err == ENOTDIR) {
        return absl::PermissionDeniedError(
            absl::StrCat("open ", where, ": a symbolic link or non-directory on the way (not followed)"));
      }
      return PosixError("open", where, err);
    }
    dir = next;
  }
  struct stat st;
  if (::fstat(dir, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(dir);
    return absl::PermissionDeniedError(absl::StrCat(root, "/", relative, ": not a regular file"));
  }
  return dir;
}

namespace {

// Owns a file descriptor.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads `fd` from `offset` to its end in pieces of `buffer`'s size, calling
// `each(offset, bytes)`; false from `each` stops it.
absl::Status ReadAll(int fd, const std::string& name, int64_t offset, std::vector<char>& buffer,
                     const std::function<bool(int64_t, std::string_view)>& each) {
  for (;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("read", name, errno);
    }
    if (n == 0) return absl::OkStatus();
    if (!each(offset, std::string_view(buffer.data(), static_cast<size_t>(n)))) {
      return absl::CancelledError("receiver went away");
    }
    offset += n;
  }
}

absl::StatusOr<std::pair<int64_t, std::string>> HashFd(int fd, const std::string& name,
                                                       std::vector<char>& buffer) {
  Sha256 hasher;
  int64_t size = 0;
  BERT_RETURN_IF_ERROR(ReadAll(fd, name, 0, buffer, [&](int64_t, std::string_view data) {
    hasher.Update(data);
    size += static_cast<int64_t>(data.size());
    return true;
  }));
  return std::make_pair(size, hasher.HexDigest());
}

}  // namespace

absl::Status ArtifactStore::Download(const v1::Artifact& artifact, const std::string& root,
                                     const std::string& location, const DownloadFrom& from,
                                     size_t chunk_bytes,
                                     const std::function<bool(const v1::ArtifactChunk&)>& send) const {
  const std::string& relative_path = from.relative_path;
  const int64_t offset = from.offset;
  if (artifact.sha256().size() != 64) {
    return absl::FailedPreconditionError(absl::StrCat(
        "artifact ", artifact.id(), " was recorded without a sha256: the controller does not serve it"));
  }
  if (offset < 0) return absl::InvalidArgumentError("offset: negative");
  std::vector<char> buffer(chunk_bytes);
  const auto corrupt = [&](const std::string& why) {
    return absl::DataLossError(
        absl::StrCat("artifact ", artifact.id(), " is corrupt on the controller: ", why));
  };
  // Every file, opened without following links, and verified before a byte
  // is sent. A file artifact is then sent from the verified descriptor; a
  // directory's files are opened again (not held open by the thousand), and a
  // file that changed in between fails the download.
  std::vector<std::pair<std::string, std::unique_ptr<Fd>>> files;
  std::vector<std::string> verified_sha;
  if (artifact.is_directory()) {
    std::string manifest;
    for (const std::string& rel : protocol::ListManifestFiles(absl::StrCat(root, "/", location))) {
      BERT_ASSIGN_OR_RETURN(int fd, OpenBeneath(root, absl::StrCat(location, "/", rel)));
      Fd file(fd);
      BERT_ASSIGN_OR_RETURN(auto hashed, HashFd(fd, rel, buffer));
      manifest += protocol::ManifestLine({rel, hashed.first, hashed.second});
      if (relative_path.empty() || rel == relative_path) {
        files.emplace_back(rel, nullptr);
        verified_sha.push_back(hashed.second);
      }
    }
    if (Sha256Hex(manifest) != artifact.sha256()) return corrupt("its manifest differs");
    if (!relative_path.empty() && files.empty()) {
      BERT_RETURN_IF_ERROR(CheckId(relative_path, "relative_path"));
      return absl::NotFoundError(absl::StrCat("artifact ", artifact.id(), ": no file ", relative_path));
    }
    if (relative_path.empty() && offset != 0) {
      return absl::InvalidArgumentError("offset: needs relative_path for a directory");
    }
  } else {
    if (!relative_path.empty()) return absl::InvalidArgumentError("relative_path: set on a file artifact");
    auto fd = OpenBeneath(root, location);
    if (!fd.ok()) {
      if (absl::IsNotFound(fd.status())) {
        return absl::NotFoundError(absl::StrCat("artifact ", artifact.id(), ": ", fd.status().message()));
      }
      return fd.status();
    }
    auto file = std::make_unique<Fd>(*fd);
    BERT_ASSIGN_OR_RETURN(auto hashed, HashFd(*fd, artifact.id(), buffer));
    if (hashed.second != artifact.sha256()) {
      return corrupt(absl::StrCat("sha256 ", hashed.second, ", recorded ", artifact.sha256()));
    }
    files.emplace_back("", std::move(file));
    verified_sha.push_back(hashed.second);
  }
  bool first = true;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& rel = files[i].first;
    if (files[i].second == nullptr) {
      BERT_ASSIGN_OR_RETURN(int fd, OpenBeneath(root, absl::StrCat(location, "/", rel)));
      files[i].second = std::make_unique<Fd>(fd);
    }
    const int fd = files[i].second->fd;
    const struct stat st = [&] {
      struct stat s{};
      ::fstat(fd, &s);
      return s;
    }();
    int64_t start = offset;
    if (relative_path.empty() && artifact.is_directory()) {
      auto held = from.held.find(rel);
      start = held == from.held.end() || held->second < 0 || held->second > st.st_size
                  ? 0
                  : held->second;
    }
    if (start > st.st_size) {
      return absl::OutOfRangeError(absl::StrCat("offset ", start, " is past the end (", st.st_size, ")"));
    }
    // Hashed again as sent: a change since the check fails the download.
    Sha256 hasher;
    int64_t pos = 0;
    BERT_RETURN_IF_ERROR(ReadAll(fd, rel, 0, buffer, [&](int64_t at, std::string_view data) {
      hasher.Update(data);
      pos = at + static_cast<int64_t>(data.size());
      if (pos <= start) return true;
      const int64_t skip = std::max<int64_t>(0, start - at);
      data.remove_prefix(static_cast<size_t>(skip));
      v1::ArtifactChunk chunk;
      chunk.set_artifact_id(artifact.id());
      if (first) *chunk.mutable_artifact() = artifact;
      first = false;
      chunk.set_offset(at + skip);
      chunk.set_data(std::string(data));
      chunk.set_chunk_sha256(Sha256Hex(data));
      chunk.set_relative_path(rel);
      return send(chunk);
    }));
    files[i].second.reset();
    if (hasher.HexDigest() != verified_sha[i]) return corrupt(absl::StrCat(rel, " changed while sent"));
  }
  if (first) {  // empty file or directory, or offset at the end: still send the header
    v1::ArtifactChunk chunk;
    chunk.set_artifact_id(artifact.id());
    *chunk.mutable_artifact() = artifact;
    chunk.set_offset(offset);
    chunk.set_chunk_sha256(Sha256Hex(""));
    if (!send(chunk)) return absl::CancelledError("receiver went away");
  }
  return absl::OkStatus();
}

}  // namespace bert::server
