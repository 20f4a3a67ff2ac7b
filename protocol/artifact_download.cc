#include "protocol/artifact_download.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/posix_error.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "protocol/artifact_manifest.h"
#include "protocol/grpc_status.h"

namespace bert::protocol {
namespace fs = std::filesystem;
namespace {

// A relative path from the network must stay inside the artifact.
bool SafeRelativePath(const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return false;
  for (const auto& part : fs::path(rel)) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

int64_t SizeOrZero(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

// Appends the part of `data` (which starts at `offset`) past the `have` bytes
// already in `file`.
absl::Status AppendAt(const std::string& file, int64_t have, int64_t offset,
                      const std::string& data) {
  // Bytes before `have` are already on disk (an earlier, interrupted transfer).
  const int64_t skip = have - offset;
  if (skip < 0) {
    return absl::DataLossError(
        absl::StrCat(file, ": chunk at offset ", offset, " leaves a gap after ", have, " bytes"));
  }
  if (skip >= static_cast<int64_t>(data.size())) return absl::OkStatus();
  int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError("open", file, errno);
  const char* p = data.data() + skip;
  size_t left = data.size() - static_cast<size_t>(skip);
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return PosixError("write", file, err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  close(fd);
  return absl::OkStatus();
}

absl::Status SyncFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError("open", path, errno);
  int r = fsync(fd);
  int err = errno;
  close(fd);
  return r == 0 ? absl::OkStatus() : PosixError("fsync", path, err);
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// What `partial` holds: its size (a file), or each file's size (a directory).
ResumePoint HeldIn(const std::string& partial, bool dir) {
  ResumePoint from;
  if (!dir) {
    from.offset = SizeOrZero(partial);
    return from;
  }
  for (const std::string& rel : ListManifestFiles(partial)) {
    from.held[rel] = SizeOrZero(fs::path(partial) / rel);
  }
  return from;
}

// One stream into `partial`; resumes from the bytes present.
absl::Status DownloadOnce(const v1::Artifact& artifact, const std::string& partial,
                          const OpenArtifactStream& open, const DownloadOptions& options) {
  const bool dir = artifact.is_directory();
  std::error_code ec;
  if (dir) fs::create_directories(partial, ec);
  const ResumePoint from = HeldIn(partial, dir);
  int64_t file_have = from.offset;
  int64_t total_have = from.offset;
  std::map<std::string, int64_t> have = from.held;  // directory files on disk
  for (const auto& [rel, bytes] : have) total_have += bytes;
  if (options.progress) options.progress(total_have, artifact.size_bytes());

  grpc::ClientContext context;
  auto reader = open(&context, from);
  v1::ArtifactChunk chunk;
  absl::Status local = absl::OkStatus();
  while (local.ok() && reader->Read(&chunk)) {
    if (Sha256Hex(chunk.data()) != chunk.chunk_sha256()) {
      local = absl::DataLossError(absl::StrCat("artifact ", artifact.id(), ": chunk at offset ",
                                               chunk.offset(), " of '", chunk.relative_path(),
                                               "' fails its sha256"));
      break;
    }
    const int64_t end = chunk.offset() + static_cast<int64_t>(chunk.data().size());
    if (!dir) {
      local = AppendAt(partial, file_have, chunk.offset(), chunk.data());
      if (local.ok() && end > file_have) {
        total_have += end - file_have;
        file_have = end;
      }
    } else {
      const std::string& rel = chunk.relative_path();
      // The header alone (nothing left to send, or an empty directory).
      if (rel.empty() && chunk.data().empty()) continue;
      if (!SafeRelativePath(rel)) {
        local = absl::DataLossError(
            absl::StrCat("artifact ", artifact.id(), ": bad file name '", rel, "' in a chunk"));
        break;
      }
      const fs::path file = fs::path(partial) / rel;
      auto it = have.find(rel);
      if (it == have.end()) {
        fs::create_directories(file.parent_path(), ec);
        it = have.emplace(rel, SizeOrZero(file)).first;
        total_have += it->second;
      }
      local = AppendAt(file.string(), it->second, chunk.offset(), chunk.data());
      if (local.ok() && end > it->second) {
        total_have += end - it->second;
        it->second = end;
      }
    }
    if (local.ok() && options.progress) options.progress(total_have, artifact.size_bytes());
  }
  if (!local.ok()) {
    context.TryCancel();
    reader->Finish();
    return local;
  }
  return FromGrpcStatus(reader->Finish(), absl::StrCat("download ", artifact.id()));
}

}  // namespace

bool RetryableTransferError(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

std::string PartialPathFor(const std::string& dest) { return dest + ".partial"; }

absl::Status DownloadArtifact(const v1::Artifact& artifact, const std::string& dest,
                              const OpenArtifactStream& open, const DownloadOptions& options) {
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    if (VerifyLocalArtifact(dest, artifact).ok()) return absl::OkStatus();
    RemoveAll(dest);
  }
  fs::create_directories(fs::path(dest).parent_path(), ec);
  const std::string partial = PartialPathFor(dest);
  // A partial of the other kind (a file where a directory is expected) is no start.
  if (fs::exists(partial, ec) && fs::is_directory(partial, ec) != artifact.is_directory()) {
    RemoveAll(partial);
  }
  absl::Status last;
  for (int attempt = 0; attempt < std::max(1, options.max_attempts); ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(options.retry_backoff * attempt);
    last = DownloadOnce(artifact, partial, open, options);
    if (last.ok()) {
      last = VerifyLocalArtifact(partial, artifact);
      if (last.ok()) {
        if (!artifact.is_directory()) {
          BERT_RETURN_IF_ERROR(SyncFile(partial));
        } else {
          for (const auto& e : fs::recursive_directory_iterator(partial, ec)) {
            if (e.is_regular_file()) BERT_RETURN_IF_ERROR(SyncFile(e.path().string()));
          }
          BERT_RETURN_IF_ERROR(SyncDirectory(partial));
        }
        fs::rename(partial, dest, ec);
        if (ec) return absl::InternalError(absl::StrCat("rename ", partial, ": ", ec.message()));
        return SyncDirectory(fs::path(dest).parent_path().string());
      }
    }
    if (last.code() == absl::StatusCode::kDataLoss) {
      RemoveAll(partial);  // never build on bytes that failed a check
      continue;
    }
    if (!RetryableTransferError(last)) break;
  }
  if (last.code() == absl::StatusCode::kDataLoss) RemoveAll(partial);
  return last;
}

}  // namespace bert::protocol
