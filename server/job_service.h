// bert.v1.JobService over gRPC: translates RPCs into JobManager and Store calls.
#pragma once

#include "bert/v1/job_service.grpc.pb.h"
#include "server/event_bus.h"
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

 private:
  // `owner`: the caller's subject, against which concurrent watches are counted.
  absl::Status Watch(grpc::ServerContext* context, const v1::WatchJobRequest& request,
                     const std::string& owner, grpc::ServerWriter<v1::Event>* writer);

  JobManager* manager_;
  storage::Store* store_;
  EventBus* bus_;
  const RpcGuard* guard_;
};

}  // namespace bert::server
