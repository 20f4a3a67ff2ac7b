// Moves artifacts between an agent's disk and the controller over
// AgentService's UploadArtifact/DownloadArtifact, in checksummed chunks.
//
// Downloads are protocol::DownloadArtifact's (protocol/artifact_download.h,
// which bertctl's pull shares): they land in "<dest>.partial", resume from what
// is already there, and are checked chunk by chunk and whole before they are
// renamed to <dest>; a mismatch is DATA_LOSS and a corrupt artifact is never used.
// An interrupted upload is retried from the bytes the controller already holds
// (GetUploadState), not from the start.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/agent_service.grpc.pb.h"

namespace bert::agent {

struct TransferOptions {
  size_t chunk_bytes = 1 << 20;
  int max_attempts = 5;  // per transfer, on UNAVAILABLE and the like
  std::chrono::milliseconds retry_backoff{500};
  std::string token;  // bearer token, when the controller wants one
};

// Thread-compatible; the stub is shared and thread-safe.
class ArtifactTransfer {
 public:
  ArtifactTransfer(std::shared_ptr<v1::AgentService::StubInterface> stub, TransferOptions options)
      : stub_(std::move(stub)), options_(std::move(options)) {}

  // Fetches `artifact` (a file or directory) to `dest`; OK at once when `dest`
  // already holds it.
  // `for_job`: the job it is fetched for, which the controller needs for an
  // artifact of no one job (an uploaded input, "inputs/<sha256>").
  absl::Status Download(const v1::Artifact& artifact, const std::string& dest,
                        const std::string& for_job = "");

  // Sends the file or directory at `path` as artifact `artifact_id`, on behalf
  // of attempt `ref`; returns the controller's record of it.
  absl::StatusOr<v1::Artifact> Upload(const v1::AssignmentRef& ref, const std::string& artifact_id,
                                      const std::string& name, v1::StageKind produced_by,
                                      const std::string& path);

 private:
  // One UploadArtifact call; each file starts at its `held` count (absent: 0).
  absl::StatusOr<v1::Artifact> UploadOnce(const v1::AssignmentRef& ref, const v1::Artifact& header,
                                          const std::string& path, bool is_directory,
                                          const std::vector<std::string>& files,
                                          const std::map<std::string, int64_t>& held);
  // What the controller holds of an interrupted upload of `header`; empty
  // when nothing or when it cannot tell (the upload then starts over).
  std::map<std::string, int64_t> HeldOnController(const v1::Artifact& header);
  void Authorize(grpc::ClientContext& context) const;

  std::shared_ptr<v1::AgentService::StubInterface> stub_;
  TransferOptions options_;
};

}  // namespace bert::agent
