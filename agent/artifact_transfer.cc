#include "agent/artifact_transfer.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/posix_error.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "protocol/artifact_manifest.h"
#include "protocol/grpc_status.h"

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

bool Retryable(const absl::Status& s) {
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

// A relative path from the network must stay inside the artifact.
bool SafeRelativePath(const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return false;
  for (const auto& part : fs::path(rel)) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

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

}  // namespace

void ArtifactTransfer::Authorize(grpc::ClientContext& context) const {
  if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
}

absl::Status ArtifactTransfer::DownloadOnce(const v1::Artifact& artifact,
                                            const std::string& partial) {
  const bool dir = artifact.is_directory();
  std::error_code ec;
  if (dir) fs::create_directories(partial, ec);
  int64_t file_have = 0;
  if (!dir && fs::exists(partial, ec)) file_have = static_cast<int64_t>(fs::file_size(partial, ec));

  grpc::ClientContext context;
  Authorize(context);
  v1::DownloadArtifactRequest request;
  request.set_artifact_id(artifact.id());
  request.set_offset(dir ? 0 : file_have);
  auto reader = stub_->DownloadArtifact(&context, request);
  std::map<std::string, int64_t> have;  // directory files seen in this stream
  v1::ArtifactChunk chunk;
  absl::Status local = absl::OkStatus();
  while (local.ok() && reader->Read(&chunk)) {
    if (Sha256Hex(chunk.data()) != chunk.chunk_sha256()) {
      local = absl::DataLossError(absl::StrCat("artifact ", artifact.id(), ": chunk at offset ",
                                               chunk.offset(), " of '", chunk.relative_path(),
                                               "' fails its sha256"));
      break;
    }
    if (!dir) {
      local = AppendAt(partial, file_have, chunk.offset(), chunk.data());
      if (local.ok()) {
        file_have = std::max(file_have, chunk.offset() + static_cast<int64_t>(chunk.data().size()));
      }
      continue;
    }
    const std::string& rel = chunk.relative_path();
    if (!SafeRelativePath(rel)) {
      local = absl::DataLossError(
          absl::StrCat("artifact ", artifact.id(), ": bad file name '", rel, "' in a chunk"));
      break;
    }
    const fs::path file = fs::path(partial) / rel;
    auto it = have.find(rel);
    if (it == have.end()) {
      fs::create_directories(file.parent_path(), ec);
      int64_t size = fs::exists(file, ec) ? static_cast<int64_t>(fs::file_size(file, ec)) : 0;
      it = have.emplace(rel, size).first;
    }
    local = AppendAt(file.string(), it->second, chunk.offset(), chunk.data());
    if (local.ok()) {
      it->second = std::max(it->second, chunk.offset() + static_cast<int64_t>(chunk.data().size()));
    }
  }
  if (!local.ok()) {
    context.TryCancel();
    reader->Finish();
    return local;
  }
  return protocol::FromGrpcStatus(reader->Finish(), absl::StrCat("download ", artifact.id()));
}

absl::Status ArtifactTransfer::Download(const v1::Artifact& artifact, const std::string& dest) {
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    if (protocol::VerifyLocalArtifact(dest, artifact).ok()) return absl::OkStatus();
    RemoveAll(dest);
  }
  fs::create_directories(fs::path(dest).parent_path(), ec);
  const std::string partial = dest + ".partial";
  absl::Status last;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(options_.retry_backoff * attempt);
    last = DownloadOnce(artifact, partial);
    if (last.ok()) {
      last = protocol::VerifyLocalArtifact(partial, artifact);
      if (last.ok()) {
        if (!artifact.is_directory()) {
          BERT_RETURN_IF_ERROR(SyncFile(partial));
        } else {
          for (const auto& e : fs::recursive_directory_iterator(partial, ec)) {
            if (e.is_regular_file()) BERT_RETURN_IF_ERROR(SyncFile(e.path().string()));
          }
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
    if (!Retryable(last)) break;
  }
  if (last.code() == absl::StatusCode::kDataLoss) RemoveAll(partial);
  return last;
}

absl::StatusOr<v1::Artifact> ArtifactTransfer::UploadOnce(const v1::AssignmentRef& ref,
                                                          const v1::Artifact& header,
                                                          const std::string& path,
                                                          bool is_directory,
                                                          const std::vector<std::string>& files,
                                                          const std::map<std::string, int64_t>& held) {
  grpc::ClientContext context;
  Authorize(context);
  v1::Artifact result;
  auto writer = stub_->UploadArtifact(&context, &result);
  bool first = true;
  std::string buffer(options_.chunk_bytes, '\0');
  bool stream_ok = true;
  for (const std::string& rel : files) {
    const std::string file = is_directory ? (fs::path(path) / rel).string() : path;
    std::ifstream in(file, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("upload: cannot open ", file));
    int64_t offset = 0;
    if (auto it = held.find(rel); it != held.end() && it->second > 0) {
      std::error_code ec;
      const auto size = static_cast<int64_t>(fs::file_size(file, ec));
      if (!ec && it->second >= size && !first) continue;  // held whole: nothing to resend
      offset = ec ? 0 : std::min(it->second, size);
      in.seekg(offset);
    }
    do {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      const std::streamsize n = in.gcount();
      if (n == 0 && offset > 0 && !first) break;
      v1::ArtifactChunk chunk;
      chunk.set_artifact_id(header.id());
      if (first) {
        *chunk.mutable_artifact() = header;
        *chunk.mutable_ref() = ref;
        first = false;
      }
      chunk.set_offset(offset);
      chunk.set_data(buffer.data(), static_cast<size_t>(n));
      chunk.set_chunk_sha256(Sha256Hex(chunk.data()));
      if (is_directory) chunk.set_relative_path(rel);
      offset += n;
      if (!writer->Write(chunk)) {
        stream_ok = false;
        break;
      }
    } while (in);
    if (!stream_ok) break;
  }
  if (first) {  // an empty directory still announces itself
    v1::ArtifactChunk chunk;
    chunk.set_artifact_id(header.id());
    *chunk.mutable_artifact() = header;
    *chunk.mutable_ref() = ref;
    chunk.set_chunk_sha256(Sha256Hex(""));
    writer->Write(chunk);
  }
  writer->WritesDone();
  BERT_RETURN_IF_ERROR(
      protocol::FromGrpcStatus(writer->Finish(), absl::StrCat("upload ", header.id())));
  return result;
}

absl::StatusOr<v1::Artifact> ArtifactTransfer::Upload(const v1::AssignmentRef& ref,
                                                      const std::string& artifact_id,
                                                      const std::string& name,
                                                      v1::StageKind produced_by,
                                                      const std::string& path) {
  BERT_ASSIGN_OR_RETURN(protocol::LocalArtifact local, protocol::DescribeLocalArtifact(path));
  v1::Artifact header;
  header.set_id(artifact_id);
  header.set_name(name);
  header.set_size_bytes(local.size_bytes);
  header.set_sha256(local.sha256);
  header.set_is_directory(local.is_directory);
  header.set_produced_by(produced_by);
  std::vector<std::string> files;
  if (local.is_directory) {
    for (const protocol::ManifestEntry& e : local.files) files.push_back(e.relative_path);
  } else {
    files.push_back("");
  }
  absl::Status last;
  std::map<std::string, int64_t> held;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(options_.retry_backoff * attempt);
    // Also on the first try: an earlier run (an agent restarted) may have
    // sent part of the same content.
    held = HeldOnController(header);
    auto result = UploadOnce(ref, header, path, local.is_directory, files, held);
    if (result.ok()) return result;
    last = result.status();
    // Each try resends from offsets the controller said it holds, which it
    // accepts; FAILED_PRECONDITION therefore means a stale attempt: never retried.
    if (!Retryable(last)) break;
  }
  return last;
}

std::map<std::string, int64_t> ArtifactTransfer::HeldOnController(const v1::Artifact& header) {
  grpc::ClientContext context;
  Authorize(context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::GetUploadStateRequest request;
  request.set_artifact_id(header.id());
  request.set_sha256(header.sha256());
  v1::GetUploadStateResponse response;
  std::map<std::string, int64_t> held;
  if (!stub_->GetUploadState(&context, request, &response).ok()) return held;
  for (const auto& file : response.files()) held[file.relative_path()] = file.bytes();
  return held;
}

}  // namespace bert::agent
