#include "server/artifact_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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

}  // namespace

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
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError("open", path, errno);
  absl::Status status;
  if (::ftruncate(fd, chunk.offset()) != 0) status = PosixError("truncate", path, errno);
  size_t written = 0;
  while (status.ok() && written < chunk.data().size()) {
    ssize_t n = ::pwrite(fd, chunk.data().data() + written, chunk.data().size() - written,
                         chunk.offset() + static_cast<off_t>(written));
    if (n < 0) {
      if (errno == EINTR) continue;
      status = PosixError("write", path, errno);
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
  const std::string final_path = store_->PathOf(header_.id());
  std::error_code ec;
  fs::create_directories(fs::path(final_path).parent_path(), ec);
  fs::remove_all(final_path, ec);
  fs::rename(partial_, final_path, ec);
  if (ec) return PosixError("rename", final_path, ec.value());
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

absl::Status ArtifactStore::Download(const v1::Artifact& artifact, const std::string& path,
                                     const std::string& relative_path, int64_t offset,
                                     size_t chunk_bytes,
                                     const std::function<bool(const v1::ArtifactChunk&)>& send) const {
  std::vector<std::string> files;
  const bool whole_directory = artifact.is_directory() && relative_path.empty();
  if (whole_directory) {
    if (offset != 0) return absl::InvalidArgumentError("offset: needs relative_path for a directory");
    files = protocol::ListManifestFiles(path);
  } else {
    if (!relative_path.empty()) BERT_RETURN_IF_ERROR(CheckId(relative_path, "relative_path"));
    files.push_back(relative_path);
  }
  std::string manifest;
  bool first = true;
  std::vector<char> buffer(chunk_bytes);
  for (const std::string& rel : files) {
    const std::string file = rel.empty() ? path : path + "/" + rel;
    std::ifstream in(file, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("artifact ", artifact.id(), ": ", file, " is missing"));
    Sha256 hasher;
    int64_t pos = 0;
    int64_t start = whole_directory ? 0 : offset;
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      const std::streamsize n = in.gcount();
      if (n <= 0) break;
      std::string_view data(buffer.data(), static_cast<size_t>(n));
      hasher.Update(data);
      const int64_t chunk_start = pos;
      pos += n;
      if (pos <= start) continue;
      const int64_t skip = std::max<int64_t>(0, start - chunk_start);
      data.remove_prefix(static_cast<size_t>(skip));
      v1::ArtifactChunk chunk;
      chunk.set_artifact_id(artifact.id());
      if (first) *chunk.mutable_artifact() = artifact;
      first = false;
      chunk.set_offset(chunk_start + skip);
      chunk.set_data(std::string(data));
      chunk.set_chunk_sha256(Sha256Hex(data));
      chunk.set_relative_path(rel);
      if (!send(chunk)) return absl::CancelledError("receiver went away");
    }
    if (start > pos) {
      return absl::OutOfRangeError(absl::StrCat("offset ", start, " is past the end (", pos, ")"));
    }
    const std::string sha = hasher.HexDigest();
    if (whole_directory) manifest += protocol::ManifestLine({rel, pos, sha});
    if (!artifact.is_directory() && !artifact.sha256().empty() && sha != artifact.sha256()) {
      return absl::DataLossError(absl::StrCat("artifact ", artifact.id(), " is corrupt on the controller: sha256 ",
                                              sha, ", recorded ", artifact.sha256()));
    }
  }
  if (whole_directory && !artifact.sha256().empty() && Sha256Hex(manifest) != artifact.sha256()) {
    return absl::DataLossError(absl::StrCat("artifact ", artifact.id(), " is corrupt on the controller: manifest differs"));
  }
  if (first) {  // empty file or directory: still send the header
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
