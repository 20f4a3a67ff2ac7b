// The receiving side of an artifact stream (AgentService.DownloadArtifact,
// JobService.PullArtifact): checksummed chunks written beside the destination,
// resumed after an interruption, verified whole before they take its name.
// bert-agent fetches its inputs with it, bertctl pulls a job's artifacts.
//
// Bytes land in "<dest>.partial" (a file, or a directory of files) and resume
// from what is already there; every chunk's SHA-256, then the whole
// artifact's size and SHA-256 (a directory's manifest) are checked before it
// is synced and renamed to <dest>. A mismatch discards the partial data and is
// DATA_LOSS: nothing that failed a check is ever found under <dest>.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"

namespace bert::protocol {

// Where the next stream should start: a file artifact from `offset`; a
// directory's files from the bytes `held` of each (relative path -> bytes).
struct ResumePoint {
  int64_t offset = 0;
  std::map<std::string, int64_t> held;
};

// Opens one stream of the artifact's chunks from `from`, on `context` (which
// the opener may add metadata to). Called once per attempt.
using OpenArtifactStream =
    std::function<std::unique_ptr<grpc::ClientReaderInterface<v1::ArtifactChunk>>(
        grpc::ClientContext* context, const ResumePoint& from)>;

struct DownloadOptions {
  int max_attempts = 5;  // streams per download, on UNAVAILABLE and the like
  std::chrono::milliseconds retry_backoff{500};
  // Bytes on disk so far and the artifact's size, after each chunk written
  // (and once at the start with what a previous run left). May be empty.
  std::function<void(int64_t have, int64_t total)> progress;
};

// True for the codes a transfer retries (UNAVAILABLE, DEADLINE_EXCEEDED,
// ABORTED, RESOURCE_EXHAUSTED, UNKNOWN, INTERNAL).
bool RetryableTransferError(const absl::Status& status);

// The partial download of `dest`: "<dest>.partial".
std::string PartialPathFor(const std::string& dest);

// Fetches `artifact` (a file or directory) to `dest` by the rules above; OK
// at once when `dest` already holds exactly it. A `dest` that holds anything
// else is removed first, so callers that must not lose a user's files check
// `dest` before calling.
absl::Status DownloadArtifact(const v1::Artifact& artifact, const std::string& dest,
                              const OpenArtifactStream& open, const DownloadOptions& options);

}  // namespace bert::protocol
