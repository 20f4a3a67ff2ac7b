// bert.v1.JobService over gRPC: translates RPCs into JobManager and Store calls.
#pragma once

#include "bert/v1/job_service.grpc.pb.h"
#include "server/artifact_admission.h"
#include "server/artifact_store.h"
#include "server/event_bus.h"
#include "server/input_store.h"
#include "server/job_artifacts.h"
#include "server/job_manager.h"
#include "server/rpc_guard.h"
#include "storage/store.h"

namespace bert::server {

// Thread-safe; every pointer must outlive the service.
class JobServiceImpl final : public v1::JobService::Service {
 public:
  JobServiceImpl(JobManager* manager, storage::Store* store, EventBus* bus, const RpcGuard* guard)
      : manager_(manager), store_(store), bus_(bus), guard_(guard) {}

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override;
  grpc::Status ValidateSpec(grpc::ServerContext* context, const v1::ValidateSpecRequest* request,
                            v1::ValidateSpecResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::Event>* writer) override;
  grpc::Status ListCheckpoints(grpc::ServerContext* context,
                               const v1::ListCheckpointsRequest* request,
                               v1::ListCheckpointsResponse* response) override;
  grpc::Status GetMetrics(grpc::ServerContext* context, const v1::GetMetricsRequest* request,
                          v1::GetMetricsResponse* response) override;
  grpc::Status ListAgents(grpc::ServerContext* context, const v1::ListAgentsRequest* request,
                          v1::ListAgentsResponse* response) override;

  // A job's artifacts for its viewers (job_artifact_service.cc). Unset
  // (ServeArtifacts not called): UNAVAILABLE.
  void ServeArtifacts(const ArtifactStore* artifacts, const ArtifactAdmission* admission) {
    artifacts_ = artifacts;
    admission_ = admission;
  }
  grpc::Status ListJobArtifacts(grpc::ServerContext* context,
                                const v1::ListJobArtifactsRequest* request,
                                v1::ListJobArtifactsResponse* response) override;
  grpc::Status PullArtifact(grpc::ServerContext* context, const v1::PullArtifactRequest* request,
                            grpc::ServerWriter<v1::ArtifactChunk>* writer) override;

  // Data from the submitting machine (input_service.cc): what a submitter
  // needs to know before a submit, and content-addressed corpus uploads.
  // Unset (ServeInputs not called): UNAVAILABLE.
  void ServeInputs(InputStore* inputs, v1::ClusterInfo info) {
    inputs_ = inputs;
    cluster_info_ = std::move(info);
  }
  grpc::Status GetClusterInfo(grpc::ServerContext* context, const v1::GetClusterInfoRequest* request,
                              v1::ClusterInfo* response) override;
  grpc::Status UploadInput(grpc::ServerContext* context,
                           grpc::ServerReader<v1::ArtifactChunk>* reader,
                           v1::Artifact* response) override;
  grpc::Status GetInputUploadState(grpc::ServerContext* context,
                                   const v1::GetUploadStateRequest* request,
                                   v1::GetUploadStateResponse* response) override;

  // Lifecycle verbs (job_lifecycle_service.cc): the job's submitter or an admin.
  grpc::Status RetryJob(grpc::ServerContext* context, const v1::RetryJobRequest* request,
                        v1::Job* response) override;
  grpc::Status PauseJob(grpc::ServerContext* context, const v1::PauseJobRequest* request,
                        v1::Job* response) override;
  grpc::Status ResumeJob(grpc::ServerContext* context, const v1::ResumeJobRequest* request,
                         v1::Job* response) override;
  grpc::Status DeleteJob(grpc::ServerContext* context, const v1::DeleteJobRequest* request,
                         v1::DeleteJobResponse* response) override;

 private:
  // OK for an admin or the job's submitter; PERMISSION_DENIED naming `verb` otherwise.
  absl::Status CheckOwnsJob(const Principal& who, const std::string& job_id,
                            absl::string_view verb) const;
  // `owner`: the caller's subject, against which concurrent watches are counted.
  absl::Status Watch(grpc::ServerContext* context, const v1::WatchJobRequest& request,
                     const std::string& owner, grpc::ServerWriter<v1::Event>* writer);

  JobManager* manager_;
  storage::Store* store_;
  EventBus* bus_;
  const RpcGuard* guard_;
  const ArtifactStore* artifacts_ = nullptr;
  const ArtifactAdmission* admission_ = nullptr;
  InputStore* inputs_ = nullptr;
  v1::ClusterInfo cluster_info_;
};

}  // namespace bert::server
