#include "server/upload_stream.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace bert::server {

absl::StatusOr<v1::Artifact> ReadUploadHeader(ChunkReader* reader, v1::ArtifactChunk* first) {
  if (!reader->Read(first)) return absl::InvalidArgumentError("upload: no chunks");
  if (!first->has_artifact()) {
    return absl::InvalidArgumentError("upload: the first chunk must carry `artifact`");
  }
  v1::Artifact header = first->artifact();
  if (header.id().empty()) header.set_id(first->artifact_id());
  return header;
}

absl::Status ReceiveChunks(grpc::ServerContext* context, ChunkReader* reader,
                           const v1::ArtifactChunk& first, const std::string& artifact_id,
                           ArtifactStore::Upload& upload) {
  v1::ArtifactChunk chunk = first;
  do {
    if (!chunk.artifact_id().empty() && chunk.artifact_id() != artifact_id) {
      return absl::InvalidArgumentError(absl::StrCat("upload: chunk for '", chunk.artifact_id(),
                                                     "' in the upload of '", artifact_id, "'"));
    }
    absl::Status status = upload.Write(chunk);
    if (!status.ok()) {
      if (upload.resume_offset() >= 0) {
        context->AddTrailingMetadata("bert-resume-offset", std::to_string(upload.resume_offset()));
      }
      return status;
    }
  } while (reader->Read(&chunk));
  if (context->IsCancelled()) return absl::CancelledError("upload cancelled by the client");
  return absl::OkStatus();
}

}  // namespace bert::server
