// A JobService that keeps one scripted job in memory, for testing BertClient
// and bertctl over real gRPC on loopback without bertd. It can require a
// bearer token and drop the first WatchJob stream part-way, like a restarted
// controller. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bert/v1/job_service.grpc.pb.h"

namespace bert::client::testing {

class FakeJobService final : public bert::v1::JobService::Service {
 public:
  // The job "job-1" with its five stages and `events` (seq 1..N) ending in success.
  FakeJobService();

  // When set, calls without "authorization: Bearer <token>" get UNAUTHENTICATED.
  void RequireToken(std::string token);
  // The first WatchJob stream sends this many events, then fails UNAVAILABLE.
  void DropFirstStreamAfter(int events);

  std::vector<bert::v1::SubmitJobRequest> submitted() const;
  std::vector<int64_t> watch_after_seqs() const;  // after_seq of each WatchJob call
  int64_t event_count() const;

  grpc::Status SubmitJob(grpc::ServerContext* context, const bert::v1::SubmitJobRequest* request,
                         bert::v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const bert::v1::GetJobRequest* request,
                      bert::v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const bert::v1::ListJobsRequest* request,
                        bert::v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const bert::v1::CancelJobRequest* request,
                         bert::v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const bert::v1::WatchJobRequest* request,
                        grpc::ServerWriter<bert::v1::Event>* writer) override;
  grpc::Status ListCheckpoints(grpc::ServerContext* context,
                               const bert::v1::ListCheckpointsRequest* request,
                               bert::v1::ListCheckpointsResponse* response) override;
  grpc::Status GetMetrics(grpc::ServerContext* context, const bert::v1::GetMetricsRequest* request,
                          bert::v1::GetMetricsResponse* response) override;
  grpc::Status ListAgents(grpc::ServerContext* context, const bert::v1::ListAgentsRequest* request,
                          bert::v1::ListAgentsResponse* response) override;

 private:
  grpc::Status CheckToken(grpc::ServerContext* context) const;

  mutable std::mutex mu_;
  std::string token_;
  int drop_after_ = -1;
  bert::v1::Job job_;
  std::vector<bert::v1::Event> events_;
  std::vector<bert::v1::SubmitJobRequest> submitted_;
  std::vector<int64_t> watch_after_seqs_;
};

// Runs `service` on 127.0.0.1 on a free port until destroyed.
class FakeServer {
 public:
  explicit FakeServer(FakeJobService* service);
  ~FakeServer();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace bert::client::testing
