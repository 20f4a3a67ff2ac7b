// JobService's data-from-the-submitting-machine RPCs: GetClusterInfo,
// UploadInput and GetInputUploadState, over InputStore (input_store.h) and
// the upload stream shared with AgentService.UploadArtifact (upload_stream.h).
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "protocol/artifact_ids.h"
#include "server/job_service.h"
#include "server/upload_stream.h"

namespace bert::server {
namespace {
constexpr char kService[] = "/bert.v1.JobService/";
std::string Method(const char* name) { return absl::StrCat(kService, name); }
}  // namespace

grpc::Status JobServiceImpl::GetClusterInfo(grpc::ServerContext* context,
                                            const v1::GetClusterInfoRequest*,
                                            v1::ClusterInfo* response) {
  return guard_->Run(context, Method("GetClusterInfo"), [&](const Principal&) {
    *response = cluster_info_;
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::UploadInput(grpc::ServerContext* context,
                                         grpc::ServerReader<v1::ArtifactChunk>* reader,
                                         v1::Artifact* response) {
  return guard_->Run(context, Method("UploadInput"), [&](const Principal& who) -> absl::Status {
    if (inputs_ == nullptr) return absl::UnavailableError("this bertd accepts no uploads");
    v1::ArtifactChunk chunk;
    BERT_ASSIGN_OR_RETURN(v1::Artifact header, ReadUploadHeader(reader, &chunk));
    // The limit and the header are checked before any byte is written.
    BERT_ASSIGN_OR_RETURN(InputStore::Upload upload, inputs_->Begin(header, who.subject));
    if (!upload.held()) {
      BERT_RETURN_IF_ERROR(ReceiveChunks(
          context, reader, chunk, protocol::InputArtifactId(header.sha256()), upload.bytes()));
    }
    BERT_ASSIGN_OR_RETURN(v1::Artifact artifact, upload.Finish());
    artifact.clear_uploaded_by();  // who else uploaded it is not the caller's business
    *response = std::move(artifact);
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::GetInputUploadState(grpc::ServerContext* context,
                                                 const v1::GetUploadStateRequest* request,
                                                 v1::GetUploadStateResponse* response) {
  return guard_->Run(
      context, Method("GetInputUploadState"), [&](const Principal& who) -> absl::Status {
        if (inputs_ == nullptr) return absl::UnavailableError("this bertd accepts no uploads");
        if (!request->artifact_id().empty() &&
            request->artifact_id() != protocol::InputArtifactId(request->sha256())) {
          return absl::InvalidArgumentError(absl::StrCat(
              "artifact_id '", request->artifact_id(), "': an input's id is inputs/<its sha256>"));
        }
        BERT_ASSIGN_OR_RETURN(int64_t held, inputs_->HeldBytes(request->sha256(), who.subject));
        if (held > 0) {
          v1::GetUploadStateResponse::HeldFile* file = response->add_files();
          file->set_bytes(held);
        }
        return absl::OkStatus();
      });
}

}  // namespace bert::server
