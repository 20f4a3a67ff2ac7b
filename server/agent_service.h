// bert.v1.AgentService over gRPC: translates agent RPCs into JobManager calls
// and artifact transfers into ArtifactStore calls. Every call acts for one
// agent id, which the caller's token must name (CheckActsAs); reports,
// completions and uploads are for a piece that agent runs, and name only that
// piece's artifacts (ArtifactAdmission); downloads serve recorded, hashed
// artifacts of jobs the agent runs a piece of.
#pragma once

#include "bert/v1/agent_service.grpc.pb.h"
#include "server/artifact_admission.h"
#include "server/artifact_store.h"
#include "server/job_manager.h"
#include "server/rendezvous_board.h"
#include "server/rpc_guard.h"
#include "storage/store.h"

namespace bert::server {

// Thread-safe; every pointer must outlive the service.
class AgentServiceImpl final : public v1::AgentService::Service {
 public:
  AgentServiceImpl(JobManager* manager, storage::Store* store, ArtifactStore* artifacts,
                   const ArtifactAdmission* admission, const RpcGuard* guard,
                   metrics::ControllerMetrics* metrics)
      : manager_(manager),
        store_(store),
        artifacts_(artifacts),
        admission_(admission),
        guard_(guard),
        metrics_(metrics) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status AcquireAssignment(grpc::ServerContext* context,
                                 const v1::AcquireAssignmentRequest* request,
                                 v1::AcquireAssignmentResponse* response) override;
  grpc::Status ReportStage(grpc::ServerContext* context, const v1::ReportStageRequest* request,
                           v1::ReportStageResponse* response) override;
  grpc::Status CompleteStage(grpc::ServerContext* context, const v1::CompleteStageRequest* request,
                             v1::CompleteStageResponse* response) override;
  grpc::Status UploadArtifact(grpc::ServerContext* context,
                              grpc::ServerReader<v1::ArtifactChunk>* reader,
                              v1::Artifact* response) override;
  grpc::Status DownloadArtifact(grpc::ServerContext* context,
                                const v1::DownloadArtifactRequest* request,
                                grpc::ServerWriter<v1::ArtifactChunk>* writer) override;
  grpc::Status GetUploadState(grpc::ServerContext* context, const v1::GetUploadStateRequest* request,
                              v1::GetUploadStateResponse* response) override;
  grpc::Status PublishRendezvous(grpc::ServerContext* context,
                                 const v1::PublishRendezvousRequest* request,
                                 v1::PublishRendezvousResponse* response) override;
  grpc::Status AwaitRendezvous(grpc::ServerContext* context,
                               const v1::AwaitRendezvousRequest* request,
                               v1::AwaitRendezvousResponse* response) override;

 private:
  absl::Status Upload(const Principal& who, grpc::ServerContext* context,
                      grpc::ServerReader<v1::ArtifactChunk>* reader, v1::Artifact* response);
  absl::Status Download(const Principal& who, const v1::DownloadArtifactRequest& request,
                        grpc::ServerWriter<v1::ArtifactChunk>* writer);
  // OK when `who` may act for the agent running job `job_id` (admin: always).
  absl::Status CheckRunsJob(const Principal& who, const std::string& job_id) const;

  JobManager* manager_;
  storage::Store* store_;
  ArtifactStore* artifacts_;
  const ArtifactAdmission* admission_;
  const RpcGuard* guard_;
  metrics::ControllerMetrics* metrics_;
  RendezvousBoard rendezvous_;
};

}  // namespace bert::server
