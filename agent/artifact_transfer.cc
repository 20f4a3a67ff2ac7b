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
#include "protocol/artifact_download.h"
#include "protocol/artifact_manifest.h"
#include "protocol/grpc_status.h"

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

bool Retryable(const absl::Status& s) { return protocol::RetryableTransferError(s); }

}  // namespace

void ArtifactTransfer::Authorize(grpc::ClientContext& context) const {
  if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
}

absl::Status ArtifactTransfer::Download(const v1::Artifact& artifact, const std::string& dest,
                                        const std::string& for_job) {
  protocol::DownloadOptions options;
  options.max_attempts = options_.max_attempts;
  options.retry_backoff = options_.retry_backoff;
  return protocol::DownloadArtifact(
      artifact, dest,
      [&](grpc::ClientContext* context, const protocol::ResumePoint& from) {
        Authorize(*context);
        v1::DownloadArtifactRequest request;
        request.set_artifact_id(artifact.id());
        request.set_job_id(for_job);
        // A directory is sent whole; the receiver skips the bytes it holds.
        request.set_offset(artifact.is_directory() ? 0 : from.offset);
        return stub_->DownloadArtifact(context, request);
      },
      options);
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
