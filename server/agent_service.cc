#include "server/agent_service.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "protocol/artifact_ids.h"
#include "server/input_store.h"
#include "server/upload_stream.h"
#include "server/warm_start.h"

namespace bert::server {
namespace {
constexpr char kService[] = "/bert.v1.AgentService/";
constexpr int64_t kMaxWaitMs = 30'000;
constexpr size_t kDownloadChunkBytes = 1 << 20;

std::string Method(const char* name) { return absl::StrCat(kService, name); }

// What the JobManager checks a piece's agent against: null for an admin.
MayActAs ActsAs(const Principal& who) {
  if (who.role == Role::kAdmin && who.certificate_name.empty()) return nullptr;
  return [who](const std::string& agent_id) { return CheckActsAs(who, agent_id).ok(); };
}
}  // namespace

absl::Status AgentServiceImpl::CheckRunsJob(const Principal& who, const std::string& job_id) const {
  return manager_->CheckRunsJob(job_id, ActsAs(who));
}

grpc::Status AgentServiceImpl::Register(grpc::ServerContext* context,
                                        const v1::RegisterRequest* request,
                                        v1::RegisterResponse* response) {
  return guard_->Run(context, Method("Register"), [&](const Principal& who) -> absl::Status {
    BERT_RETURN_IF_ERROR(CheckActsAs(who, request->agent().id()));
    // A pool token ("cpu-*") may mint ids, so how many it may mint is bounded.
    std::string pool_prefix;
    if (who.role == Role::kAgent && absl::EndsWith(who.subject, "*")) {
      pool_prefix = who.subject.substr(0, who.subject.size() - 1);
    }
    BERT_ASSIGN_OR_RETURN(*response, manager_->Register(request->agent(), pool_prefix));
    return absl::OkStatus();
  });
}

grpc::Status AgentServiceImpl::Heartbeat(grpc::ServerContext* context,
                                         const v1::HeartbeatRequest* request,
                                         v1::HeartbeatResponse* response) {
  return guard_->Run(context, Method("Heartbeat"), [&](const Principal& who) -> absl::Status {
    BERT_RETURN_IF_ERROR(CheckActsAs(who, request->agent_id()));
    BERT_ASSIGN_OR_RETURN(*response, manager_->Heartbeat(*request));
    return absl::OkStatus();
  });
}

grpc::Status AgentServiceImpl::AcquireAssignment(grpc::ServerContext* context,
                                                 const v1::AcquireAssignmentRequest* request,
                                                 v1::AcquireAssignmentResponse* response) {
  return guard_->Run(context, Method("AcquireAssignment"), [&](const Principal& who) -> absl::Status {
    BERT_RETURN_IF_ERROR(CheckActsAs(who, request->agent_id()));
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
  return guard_->Run(context, Method("ReportStage"), [&](const Principal& who) -> absl::Status {
    for (const v1::StageReport& report : request->reports()) {
      if (!report.has_checkpoint()) continue;
      BERT_RETURN_IF_ERROR(
          admission_->CheckReported(request->ref(), report.checkpoint().artifact(), true));
    }
    BERT_ASSIGN_OR_RETURN(*response, manager_->Report(*request, ActsAs(who)));
    return absl::OkStatus();
  });
}

grpc::Status AgentServiceImpl::CompleteStage(grpc::ServerContext* context,
                                             const v1::CompleteStageRequest* request,
                                             v1::CompleteStageResponse*) {
  return guard_->Run(context, Method("CompleteStage"), [&](const Principal& who) -> absl::Status {
    for (const v1::Artifact& output : request->outputs()) {
      BERT_RETURN_IF_ERROR(admission_->CheckReported(request->ref(), output, false));
    }
    return manager_->Complete(*request, ActsAs(who));
  });
}

absl::Status AgentServiceImpl::Upload(const Principal& who, grpc::ServerContext* context,
                                      grpc::ServerReader<v1::ArtifactChunk>* reader,
                                      v1::Artifact* response) {
  v1::ArtifactChunk chunk;
  BERT_ASSIGN_OR_RETURN(v1::Artifact header, ReadUploadHeader(reader, &chunk));
  const v1::AssignmentRef ref = chunk.ref();
  BERT_RETURN_IF_ERROR(manager_->CheckLive(ref, ActsAs(who)));
  // Only the piece's own artifacts: nothing here may touch another job's files.
  BERT_RETURN_IF_ERROR(admission_->CheckUpload(ref, header.id()));
  BERT_ASSIGN_OR_RETURN(ArtifactStore::Upload upload, ArtifactStore::Upload::Begin(artifacts_, header));
  BERT_RETURN_IF_ERROR(ReceiveChunks(context, reader, chunk, header.id(), upload));
  BERT_ASSIGN_OR_RETURN(v1::Artifact artifact, upload.Finish());
  if (metrics_ != nullptr) {
    metrics_->AddArtifactBytes(metrics::ArtifactDirection::kUpload, upload.bytes_received());
  }
  if (artifact.produced_by() == v1::STAGE_KIND_UNSPECIFIED) artifact.set_produced_by(ref.stage());
  // Recorded only for the live attempt: a stale uploader cannot replace the record.
  BERT_RETURN_IF_ERROR(manager_->CheckLive(ref, ActsAs(who)));
  BERT_RETURN_IF_ERROR(manager_->RecordArtifact(artifact));
  *response = std::move(artifact);
  return absl::OkStatus();
}

grpc::Status AgentServiceImpl::UploadArtifact(grpc::ServerContext* context,
                                              grpc::ServerReader<v1::ArtifactChunk>* reader,
                                              v1::Artifact* response) {
  return guard_->Run(context, Method("UploadArtifact"), [&](const Principal& who) {
    return Upload(who, context, reader, response);
  });
}

absl::Status AgentServiceImpl::Download(const Principal& who,
                                        const v1::DownloadArtifactRequest& request,
                                        grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  const std::string& id = request.artifact_id();
  if (std::optional<std::string> sha = protocol::ParseInputArtifactId(id)) {
    // An uploaded corpus file belongs to no one job: only to the jobs that
    // name it, and only their agents may fetch it for them.
    BERT_RETURN_IF_ERROR(CheckRunsJob(who, request.job_id()));
    BERT_ASSIGN_OR_RETURN(v1::Job job, manager_->GetJob(request.job_id()));
    if (!JobNamesInput(job, *sha)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "artifact '", id, "' is not an input of job ", request.job_id(),
          " (an uploaded file is served only to the jobs that name it)"));
    }
  } else {
    std::optional<protocol::ParsedArtifactId> parsed = protocol::ParseArtifactId(id);
    if (!parsed) {
      // Not a job's artifact: nothing an agent may fetch (and nothing recorded).
      return absl::NotFoundError(absl::StrCat("artifact '", id, "' not found"));
    }
    if (!request.job_id().empty() && request.job_id() != parsed->job_id) {
      // Another job's model or checkpoint, fetched for a job that warm-starts
      // from it: only for a job that names it (server/warm_start.h).
      BERT_RETURN_IF_ERROR(CheckRunsJob(who, request.job_id()));
      BERT_ASSIGN_OR_RETURN(v1::Job job, manager_->GetJob(request.job_id()));
      if (!IsWarmStartInput(job, id)) {
        return absl::PermissionDeniedError(absl::StrCat("artifact '", id, "' is not an input of job ",
                                                        request.job_id()));
      }
    } else {
      BERT_RETURN_IF_ERROR(CheckRunsJob(who, parsed->job_id));
    }
  }
  BERT_ASSIGN_OR_RETURN(auto artifact, store_->GetArtifact(id));
  if (!artifact) return absl::NotFoundError(absl::StrCat("artifact '", id, "' not found"));
  BERT_ASSIGN_OR_RETURN(ArtifactAdmission::Location where, admission_->Locate(*artifact));
  int64_t sent = 0;
  absl::Status status = artifacts_->Download(
      *artifact, where.root, where.relative, request.relative_path(), request.offset(),
      kDownloadChunkBytes, [&](const v1::ArtifactChunk& chunk) {
        sent += static_cast<int64_t>(chunk.data().size());
        return writer->Write(chunk);
      });
  if (metrics_ != nullptr) metrics_->AddArtifactBytes(metrics::ArtifactDirection::kDownload, sent);
  return status;
}

grpc::Status AgentServiceImpl::DownloadArtifact(grpc::ServerContext* context,
                                                const v1::DownloadArtifactRequest* request,
                                                grpc::ServerWriter<v1::ArtifactChunk>* writer) {
  return guard_->Run(context, Method("DownloadArtifact"),
                     [&](const Principal& who) { return Download(who, *request, writer); });
}

grpc::Status AgentServiceImpl::GetUploadState(grpc::ServerContext* context,
                                              const v1::GetUploadStateRequest* request,
                                              v1::GetUploadStateResponse* response) {
  return guard_->Run(context, Method("GetUploadState"), [&](const Principal& who) -> absl::Status {
    std::optional<protocol::ParsedArtifactId> parsed =
        protocol::ParseArtifactId(request->artifact_id());
    if (!parsed) {
      return absl::InvalidArgumentError(
          absl::StrCat("artifact '", request->artifact_id(), "': not a '<job>/<stage>/...' artifact id"));
    }
    BERT_RETURN_IF_ERROR(CheckRunsJob(who, parsed->job_id));
    BERT_ASSIGN_OR_RETURN(auto held, artifacts_->HeldBytes(request->artifact_id(), request->sha256()));
    for (const auto& [relative_path, bytes] : held) {
      v1::GetUploadStateResponse::HeldFile* file = response->add_files();
      file->set_relative_path(relative_path);
      file->set_bytes(bytes);
    }
    return absl::OkStatus();
  });
}

grpc::Status AgentServiceImpl::PublishRendezvous(grpc::ServerContext* context,
                                                 const v1::PublishRendezvousRequest* request,
                                                 v1::PublishRendezvousResponse*) {
  return guard_->Run(context, Method("PublishRendezvous"), [&](const Principal& who) {
    BERT_RETURN_IF_ERROR(manager_->CheckLive(request->ref(), ActsAs(who)));
    return rendezvous_.Publish(request->ref(), request->master_port());
  });
}

grpc::Status AgentServiceImpl::AwaitRendezvous(grpc::ServerContext* context,
                                               const v1::AwaitRendezvousRequest* request,
                                               v1::AwaitRendezvousResponse* response) {
  return guard_->Run(context, Method("AwaitRendezvous"), [&](const Principal& who) -> absl::Status {
    BERT_RETURN_IF_ERROR(manager_->CheckLive(request->ref(), ActsAs(who)));
    const int64_t wait_ms = std::clamp<int64_t>(request->wait_ms(), 0, kMaxWaitMs);
    response->set_master_port(rendezvous_.Await(request->ref(), absl::Milliseconds(wait_ms)));
    return absl::OkStatus();
  });
}

}  // namespace bert::server
