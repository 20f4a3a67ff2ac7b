// BertClient's side of a job's artifacts (JobService ListJobArtifacts and
// PullArtifact); the receiving rules are protocol/artifact_download.h's, the
// same code bert-agent fetches its inputs with.
#include <grpcpp/grpcpp.h>

#include "client/bert_client.h"
#include "protocol/grpc_status.h"

namespace bert::client {

absl::StatusOr<bert::v1::ListJobArtifactsResponse> BertClient::ListJobArtifacts(
    const std::string& job_id, bool include_checkpoints) {
  bert::v1::ListJobArtifactsRequest request;
  request.set_job_id(job_id);
  request.set_include_checkpoints(include_checkpoints);
  bert::v1::ListJobArtifactsResponse response;
  auto context = NewContext(false);
  absl::Status status =
      protocol::FromGrpcStatus(stub_->ListJobArtifacts(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::Status BertClient::PullArtifact(const std::string& job_id, const bert::v1::Artifact& artifact,
                                      const std::string& dest,
                                      const protocol::DownloadOptions& options) {
  return protocol::DownloadArtifact(
      artifact, dest,
      [&](grpc::ClientContext* context, const protocol::ResumePoint& from) {
        if (!options_.token.empty()) {
          context->AddMetadata("authorization", "Bearer " + options_.token);
        }
        bert::v1::PullArtifactRequest request;
        request.set_job_id(job_id);
        request.set_artifact_id(artifact.id());
        request.set_offset(from.offset);
        request.mutable_held()->insert(from.held.begin(), from.held.end());
        return std::unique_ptr<grpc::ClientReaderInterface<bert::v1::ArtifactChunk>>(
            stub_->PullArtifact(context, request));
      },
      options);
}

}  // namespace bert::client
