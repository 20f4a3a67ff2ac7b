// JobService.ListJobArtifacts and PullArtifact: a job's artifacts for the
// users who may view it. Who may view a job is decided as GetJob decides it:
// the role table (auth.cc) admits viewers, submitters and admins to every
// job, and refuses agents and unknown callers. What belongs to a job and is
// served is JobArtifacts'; the bytes go out by ArtifactStore::Download, with
// AgentService.DownloadArtifact's chunks, resume and re-hash rules.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/job_artifacts.h"
#include "server/job_service.h"

namespace bert::server {
namespace {
constexpr char kService[] = "/bert.v1.JobService/";
constexpr size_t kPullChunkBytes = 1 << 20;
constexpr size_t kMaxHeldFiles = 100'000;

std::string Method(const char* name) { return absl::StrCat(kService, name); }
}  // namespace

grpc::Status JobServiceImpl::ListJobArtifacts(grpc::ServerContext* context,
                                              const v1::ListJobArtifactsRequest* request,
                                              v1::ListJobArtifactsResponse* response) {
  return guard_->Run(context, Method("ListJobArtifacts"), [&](const Principal&) -> absl::Status {
    BERT_ASSIGN_OR_RETURN(v1::Job job, manager_->GetJob(request->job_id()));
    BERT_ASSIGN_OR_RETURN(std::vector<v1::Artifact> artifacts,
                          JobArtifacts(store_).List(job, request->include_checkpoints()));
    for (v1::Artifact& artifact : artifacts) *response->add_artifacts() = std::move(artifact);
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::PullArtifact(grpc::ServerContext* context,
                                          const v1::PullArtifactRequest* request,
                                          grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  return guard_->Run(context, Method("PullArtifact"), [&](const Principal&) -> absl::Status {
    if (artifacts_ == nullptr || admission_ == nullptr) {
      return absl::UnavailableError("this bertd does not serve artifacts");
    }
    if (request->held_size() > static_cast<int>(kMaxHeldFiles)) {
      return absl::InvalidArgumentError(
          absl::StrCat("held: ", request->held_size(), " files is over the limit of ", kMaxHeldFiles));
    }
    BERT_ASSIGN_OR_RETURN(v1::Job job, manager_->GetJob(request->job_id()));
    BERT_ASSIGN_OR_RETURN(v1::Artifact artifact,
                          JobArtifacts(store_).Find(job, request->artifact_id()));
    BERT_ASSIGN_OR_RETURN(ArtifactAdmission::Location where, admission_->Locate(artifact));
    ArtifactStore::DownloadFrom from;
    from.relative_path = request->relative_path();
    from.offset = request->offset();
    from.held.insert(request->held().begin(), request->held().end());
    return artifacts_->Download(artifact, where.root, where.relative, from, kPullChunkBytes,
                                [&](const v1::ArtifactChunk& chunk) {
                                  return !context->IsCancelled() && writer->Write(chunk);
                                });
  });
}

}  // namespace bert::server
