#include "server/agent_service.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace bert::server {
namespace {
constexpr char kService[] = "/bert.v1.AgentService/";
constexpr int64_t kMaxWaitMs = 30'000;
constexpr size_t kDownloadChunkBytes = 1 << 20;

std::string Method(const char* name) { return absl::StrCat(kService, name); }
}  // namespace

grpc::Status AgentServiceImpl::Register(grpc::ServerContext* context,
                                        const v1::RegisterRequest* request,
                                        v1::RegisterResponse* response) {
  return guard_->Run(context, Method("Register"), [&](const Principal&) -> absl::Status {
    BERT_ASSIGN_OR_RETURN(*response, manager_->Register(request->agent()));
    return absl::OkStatus();
  });
}

grpc::Status AgentServiceImpl::Heartbeat(grpc::ServerContext* context,
                                         const v1::HeartbeatRequest* request,
                                         v1::HeartbeatResponse* response) {
  return guard_->Run(context, Method("Heartbeat"), [&](const Principal&) -> absl::Status {
    BERT_ASSIGN_OR_RETURN(*response, manager_->Heartbeat(*request));
    return absl::OkStatus();
  });
}

grpc::Status AgentServiceImpl::AcquireAssignment(grpc::ServerContext* context,
                                                 const v1::AcquireAssignmentRequest* request,
                                                 v1::AcquireAssignmentResponse* response) {
  return guard_->Run(context, Method("AcquireAssignment"), [&](const Principal&) -> absl::Status {
    const int64_t wait_ms = std::clamp<int64_t>(request->wait_ms(), 0, kMaxWaitMs);
    BERT_ASSIGN_OR_RETURN(auto assignment,
                          manager_->Acquire(request->agent_id(), absl::Milliseconds(wait_ms)));
    if (assignment) *response->mutable_assignment() = std::move(*assignment);
    return absl::OkStatus();
  });
}

grpc::Status AgentServiceImpl::ReportStage(grpc::ServerContext* context,
                                           const v1::ReportStageRequest* request,
                                           v1::ReportStageResponse* response) {
  return guard_->Run(context, Method("ReportStage"), [&](const Principal&) -> absl::Status {
    BERT_ASSIGN_OR_RETURN(*response, manager_->Report(*request));
    return absl::OkStatus();
  });
}

grpc::Status AgentServiceImpl::CompleteStage(grpc::ServerContext* context,
                                             const v1::CompleteStageRequest* request,
                                             v1::CompleteStageResponse*) {
  return guard_->Run(context, Method("CompleteStage"),
                     [&](const Principal&) { return manager_->Complete(*request); });
}

absl::Status AgentServiceImpl::Upload(grpc::ServerContext* context,
                                      grpc::ServerReader<v1::ArtifactChunk>* reader,
                                      v1::Artifact* response) {
  v1::ArtifactChunk chunk;
  if (!reader->Read(&chunk)) return absl::InvalidArgumentError("upload: no chunks");
  if (!chunk.has_artifact()) {
    return absl::InvalidArgumentError("upload: the first chunk must carry `artifact`");
  }
  v1::Artifact header = chunk.artifact();
  if (header.id().empty()) header.set_id(chunk.artifact_id());
  BERT_RETURN_IF_ERROR(manager_->CheckLive(chunk.ref()));
  const v1::AssignmentRef ref = chunk.ref();
  BERT_ASSIGN_OR_RETURN(ArtifactStore::Upload upload, ArtifactStore::Upload::Begin(artifacts_, header));
  do {
    if (!chunk.artifact_id().empty() && chunk.artifact_id() != header.id()) {
      return absl::InvalidArgumentError(absl::StrCat("upload: chunk for '", chunk.artifact_id(),
                                                     "' in the upload of '", header.id(), "'"));
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
  BERT_ASSIGN_OR_RETURN(v1::Artifact artifact, upload.Finish());
  if (metrics_ != nullptr) {
    metrics_->AddArtifactBytes(metrics::ArtifactDirection::kUpload, upload.bytes_received());
  }
  if (artifact.produced_by() == v1::STAGE_KIND_UNSPECIFIED) artifact.set_produced_by(ref.stage());
  // Recorded only for the live attempt: a stale uploader cannot replace the record.
  BERT_RETURN_IF_ERROR(manager_->CheckLive(ref));
  BERT_RETURN_IF_ERROR(manager_->RecordArtifact(artifact));
  *response = std::move(artifact);
  return absl::OkStatus();
}

grpc::Status AgentServiceImpl::UploadArtifact(grpc::ServerContext* context,
                                              grpc::ServerReader<v1::ArtifactChunk>* reader,
                                              v1::Artifact* response) {
  return guard_->Run(context, Method("UploadArtifact"),
                     [&](const Principal&) { return Upload(context, reader, response); });
}

grpc::Status AgentServiceImpl::DownloadArtifact(grpc::ServerContext* context,
                                                const v1::DownloadArtifactRequest* request,
                                                grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  return guard_->Run(context, Method("DownloadArtifact"), [&](const Principal&) -> absl::Status {
    BERT_ASSIGN_OR_RETURN(auto artifact, store_->GetArtifact(request->artifact_id()));
    if (!artifact) {
      return absl::NotFoundError(absl::StrCat("artifact '", request->artifact_id(), "' not found"));
    }
    std::string path;
    if (absl::StartsWith(artifact->uri(), "file://")) {
      path = artifact->uri().substr(7);  // e.g. a spec's tokenizer.from, seen by the controller
    } else {
      BERT_RETURN_IF_ERROR(ArtifactStore::CheckId(artifact->id()));
      path = artifacts_->PathOf(artifact->id());
    }
    int64_t sent = 0;
    absl::Status status = artifacts_->Download(
        *artifact, path, request->relative_path(), request->offset(), kDownloadChunkBytes,
        [&](const v1::ArtifactChunk& chunk) {
          sent += static_cast<int64_t>(chunk.data().size());
          return writer->Write(chunk);
        });
    if (metrics_ != nullptr) metrics_->AddArtifactBytes(metrics::ArtifactDirection::kDownload, sent);
    return status;
  });
}

grpc::Status AgentServiceImpl::GetUploadState(grpc::ServerContext* context,
                                              const v1::GetUploadStateRequest* request,
                                              v1::GetUploadStateResponse* response) {
  return guard_->Run(context, Method("GetUploadState"), [&](const Principal&) -> absl::Status {
    BERT_ASSIGN_OR_RETURN(auto held, artifacts_->HeldBytes(request->artifact_id(), request->sha256()));
    for (const auto& [relative_path, bytes] : held) {
      v1::GetUploadStateResponse::HeldFile* file = response->add_files();
      file->set_relative_path(relative_path);
      file->set_bytes(bytes);
    }
    return absl::OkStatus();
  });
}

}  // namespace bert::server
