// The server side of a chunked upload stream, shared by
// AgentService.UploadArtifact and JobService.UploadInput: the first chunk
// carries the artifact's header, every chunk is written into an
// ArtifactStore::Upload (checksummed, resumable), and a chunk past the bytes
// held is refused with the offset to resume from in the trailing metadata
// "bert-resume-offset".
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/agent_service.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/sync_stream.h"
#include "server/artifact_store.h"

namespace bert::server {

using ChunkReader = grpc::ServerReaderInterface<v1::ArtifactChunk>;

// Reads the stream's first chunk into `*first` and returns its `artifact`
// header, with `id` taken from `artifact_id` when the header leaves it empty.
// INVALID_ARGUMENT for an empty stream or a first chunk without a header.
absl::StatusOr<v1::Artifact> ReadUploadHeader(ChunkReader* reader, v1::ArtifactChunk* first);

// Writes `first` and every further chunk of the stream into `upload` (whose
// header has id `artifact_id`), stopping at the first error; a chunk naming
// another artifact is INVALID_ARGUMENT. OK when every chunk was written and
// the client did not cancel; the caller then calls upload.Finish().
absl::Status ReceiveChunks(grpc::ServerContext* context, ChunkReader* reader,
                           const v1::ArtifactChunk& first, const std::string& artifact_id,
                           ArtifactStore::Upload& upload);

}  // namespace bert::server
