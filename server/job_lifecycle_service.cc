// JobService's lifecycle RPCs: RetryJob, PauseJob, ResumeJob, DeleteJob.
// Who may: the job's submitter or an admin (CancelJob's rule).
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/job_service.h"

namespace bert::server {
namespace {

std::string Method(const char* name) { return absl::StrCat("/bert.v1.JobService/", name); }

}  // namespace

absl::Status JobServiceImpl::CheckOwnsJob(const Principal& who, const std::string& job_id,
                                          absl::string_view verb) const {
  if (who.role == Role::kAdmin) return absl::OkStatus();
  BERT_ASSIGN_OR_RETURN(v1::Job job, manager_->GetJob(job_id));
  if (job.submitted_by() == who.subject) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("job ", job.id(), " belongs to '",
                                                  job.submitted_by(), "': only it or an admin may ",
                                                  verb, " it"));
}

grpc::Status JobServiceImpl::RetryJob(grpc::ServerContext* context,
                                      const v1::RetryJobRequest* request, v1::Job* response) {
  return guard_->Run(context, Method("RetryJob"), [&](const Principal& who) -> absl::Status {
    BERT_RETURN_IF_ERROR(CheckOwnsJob(who, request->job_id(), "retry"));
    BERT_ASSIGN_OR_RETURN(*response, manager_->Retry(request->job_id(), who.subject));
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::PauseJob(grpc::ServerContext* context,
                                      const v1::PauseJobRequest* request, v1::Job* response) {
  return guard_->Run(context, Method("PauseJob"), [&](const Principal& who) -> absl::Status {
    if (request->reason().size() > 1024) {
      return absl::InvalidArgumentError("reason: longer than 1024 bytes");
    }
    BERT_RETURN_IF_ERROR(CheckOwnsJob(who, request->job_id(), "pause"));
    BERT_ASSIGN_OR_RETURN(*response,
                          manager_->Pause(request->job_id(), who.subject, request->reason()));
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::ResumeJob(grpc::ServerContext* context,
                                       const v1::ResumeJobRequest* request, v1::Job* response) {
  return guard_->Run(context, Method("ResumeJob"), [&](const Principal& who) -> absl::Status {
    BERT_RETURN_IF_ERROR(CheckOwnsJob(who, request->job_id(), "resume"));
    BERT_ASSIGN_OR_RETURN(*response, manager_->Resume(request->job_id(), who.subject));
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::DeleteJob(grpc::ServerContext* context,
                                       const v1::DeleteJobRequest* request,
                                       v1::DeleteJobResponse* response) {
  return guard_->Run(context, Method("DeleteJob"), [&](const Principal& who) -> absl::Status {
    BERT_RETURN_IF_ERROR(CheckOwnsJob(who, request->job_id(), "delete"));
    BERT_ASSIGN_OR_RETURN(*response, manager_->Delete(request->job_id()));
    return absl::OkStatus();
  });
}

}  // namespace bert::server
