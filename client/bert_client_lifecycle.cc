// BertClient's lifecycle verbs: JobService RetryJob, PauseJob, ResumeJob, DeleteJob.
#include <grpcpp/grpcpp.h>

#include "client/bert_client.h"
#include "protocol/grpc_status.h"

namespace bert::client {

absl::StatusOr<bert::v1::Job> BertClient::RetryJob(const std::string& job_id) {
  bert::v1::RetryJobRequest request;
  request.set_job_id(job_id);
  bert::v1::Job job;
  auto context = NewContext(false);
  absl::Status status = protocol::FromGrpcStatus(stub_->RetryJob(context.get(), request, &job));
  if (!status.ok()) return status;
  return job;
}

absl::StatusOr<bert::v1::Job> BertClient::PauseJob(const std::string& job_id,
                                                   const std::string& reason) {
  bert::v1::PauseJobRequest request;
  request.set_job_id(job_id);
  request.set_reason(reason);
  bert::v1::Job job;
  auto context = NewContext(false);
  absl::Status status = protocol::FromGrpcStatus(stub_->PauseJob(context.get(), request, &job));
  if (!status.ok()) return status;
  return job;
}

absl::StatusOr<bert::v1::Job> BertClient::ResumeJob(const std::string& job_id) {
  bert::v1::ResumeJobRequest request;
  request.set_job_id(job_id);
  bert::v1::Job job;
  auto context = NewContext(false);
  absl::Status status = protocol::FromGrpcStatus(stub_->ResumeJob(context.get(), request, &job));
  if (!status.ok()) return status;
  return job;
}

absl::StatusOr<bert::v1::DeleteJobResponse> BertClient::DeleteJob(const std::string& job_id) {
  bert::v1::DeleteJobRequest request;
  request.set_job_id(job_id);
  bert::v1::DeleteJobResponse response;
  auto context = NewContext(false);
  absl::Status status =
      protocol::FromGrpcStatus(stub_->DeleteJob(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

}  // namespace bert::client
