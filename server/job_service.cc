#include "server/job_service.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace bert::server {
namespace {
constexpr char kService[] = "/bert.v1.JobService/";
constexpr int kWatchPage = 1000;
// GetMetrics pages: under gRPC's default 4 MiB receive limit of any client
// (the stored points' bytes, plus a few percent of framing per page).
constexpr size_t kMetricPagePoints = 100'000;
constexpr size_t kMetricPageBytes = 3 << 20;
constexpr size_t kCheckpointPageRecords = 1'000;
constexpr size_t kCheckpointPageBytes = 3 << 20;
constexpr int kMaxMetricNamesPerRequest = 1024;  // a job has at most 256 (ReportIntake)

std::string Method(const char* name) { return absl::StrCat(kService, name); }
}  // namespace

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext* context,
                                       const v1::SubmitJobRequest* request,
                                       v1::SubmitJobResponse* response) {
  return guard_->Run(context, Method("SubmitJob"), [&](const Principal& who) -> absl::Status {
    if (!request->input_files().empty()) {  // uploaded files: held, and the caller's
      if (inputs_ == nullptr) return absl::UnavailableError("this bertd serves no uploaded inputs");
      BERT_RETURN_IF_ERROR(
          inputs_->CheckSubmitted(request->input_files(), who.subject, who.role == Role::kAdmin));
    }
    BERT_ASSIGN_OR_RETURN(SubmitResult result,
                          manager_->Submit(*request, who.subject, who.role == Role::kAdmin));
    *response->mutable_job() = std::move(result.job);
    response->set_already_existed(result.already_existed);
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::ValidateSpec(grpc::ServerContext* context,
                                          const v1::ValidateSpecRequest* request,
                                          v1::ValidateSpecResponse* response) {
  return guard_->Run(context, Method("ValidateSpec"), [&](const Principal&) {
    if (request->spec_yaml().size() > (1 << 20)) {
      return absl::InvalidArgumentError("spec_yaml: over the limit of 1 MiB");
    }
    *response = manager_->Validate(*request);
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                    v1::Job* response) {
  return guard_->Run(context, Method("GetJob"), [&](const Principal&) -> absl::Status {
    BERT_ASSIGN_OR_RETURN(*response, manager_->GetJob(request->job_id()));
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* context,
                                      const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  return guard_->Run(context, Method("ListJobs"), [&](const Principal&) -> absl::Status {
    BERT_ASSIGN_OR_RETURN(*response, manager_->ListJobs(*request));
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* context,
                                       const v1::CancelJobRequest* request, v1::Job* response) {
  return guard_->Run(context, Method("CancelJob"), [&](const Principal& who) -> absl::Status {
    if (who.role != Role::kAdmin) {
      BERT_ASSIGN_OR_RETURN(v1::Job job, manager_->GetJob(request->job_id()));
      if (job.submitted_by() != who.subject) {
        return absl::PermissionDeniedError(absl::StrCat(
            "job ", job.id(), " belongs to '", job.submitted_by(), "': only it or an admin may cancel it"));
      }
    }
    BERT_ASSIGN_OR_RETURN(*response, manager_->Cancel(request->job_id(), request->reason()));
    return absl::OkStatus();
  });
}

absl::Status JobServiceImpl::Watch(grpc::ServerContext* context, const v1::WatchJobRequest& request,
                                   const std::string& owner,
                                   grpc::ServerWriter<v1::Event>* writer) {
  if (request.after_seq() < 0) return absl::InvalidArgumentError("after_seq: must not be negative");
  // An unknown job is refused before anything is held for it.
  BERT_ASSIGN_OR_RETURN(bool finished, manager_->IsFinished(request.job_id()));
  // Subscribe before reading the history, so nothing committed in between is
  // missed. A finished job publishes nothing more: its history is all there is.
  // The subscription leaves the bus on every return below.
  std::shared_ptr<EventBus::Subscription> subscription;
  if (request.follow() && !finished) {
    BERT_ASSIGN_OR_RETURN(subscription, bus_->SubscribeFor(owner, request.job_id()));
    BERT_ASSIGN_OR_RETURN(finished, manager_->IsFinished(request.job_id()));
  }
  int64_t last = request.after_seq();
  // Sends the stored events after `last`; false when the client went away.
  auto catch_up = [&]() -> absl::StatusOr<bool> {
    for (;;) {
      BERT_ASSIGN_OR_RETURN(auto events, store_->ListEvents(request.job_id(), last, kWatchPage));
      for (const v1::Event& event : events) {
        if (!writer->Write(event)) return false;
        last = event.seq();
      }
      if (static_cast<int>(events.size()) < kWatchPage) return true;
    }
  };
  BERT_ASSIGN_OR_RETURN(bool connected, catch_up());
  if (!connected || !request.follow() || finished) return absl::OkStatus();
  while (!context->IsCancelled()) {
    bool lagged = false;
    std::vector<v1::Event> events = subscription->Next(absl::Milliseconds(500), &lagged);
    if (lagged) {
      BERT_ASSIGN_OR_RETURN(connected, catch_up());
      if (!connected) return absl::OkStatus();
    }
    for (const v1::Event& event : events) {
      if (event.seq() <= last) continue;
      if (event.seq() > last + 1) {  // a gap: fill it from the store
        BERT_ASSIGN_OR_RETURN(connected, catch_up());
        if (!connected) return absl::OkStatus();
        if (event.seq() <= last) continue;
      }
      if (!writer->Write(event)) return absl::OkStatus();
      last = event.seq();
    }
    if (events.empty()) {
      BERT_ASSIGN_OR_RETURN(finished, manager_->IsFinished(request.job_id()));
      if (finished) {
        BERT_ASSIGN_OR_RETURN(connected, catch_up());
        return absl::OkStatus();
      }
    }
  }
  return absl::CancelledError("watch cancelled by the client");
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* context,
                                      const v1::WatchJobRequest* request,
                                      grpc::ServerWriter<v1::Event>* writer) {
  return guard_->Run(context, Method("WatchJob"), [&](const Principal& who) {
    return Watch(context, *request, who.subject, writer);
  });
}

grpc::Status JobServiceImpl::ListCheckpoints(grpc::ServerContext* context,
                                             const v1::ListCheckpointsRequest* request,
                                             v1::ListCheckpointsResponse* response) {
  return guard_->Run(context, Method("ListCheckpoints"), [&](const Principal&) -> absl::Status {
    BERT_RETURN_IF_ERROR(manager_->GetJob(request->job_id()).status());
    if (request->page_size() < 0) {
      return absl::InvalidArgumentError("page_size: must not be negative");
    }
    std::string start;
    if (!request->page_token().empty() &&
        !absl::WebSafeBase64Unescape(request->page_token(), &start)) {
      return absl::InvalidArgumentError("page_token: not a token from a previous page");
    }
    const size_t page_size =
        request->page_size() == 0
            ? kCheckpointPageRecords
            : std::min<size_t>(request->page_size(), kCheckpointPageRecords);
    BERT_ASSIGN_OR_RETURN(storage::Store::CheckpointPage page,
                          store_->ListCheckpointsPage(request->job_id(), start, page_size,
                                                      kCheckpointPageBytes));
    for (auto& r : page.records) *response->add_checkpoints() = std::move(r);
    if (!page.next.empty()) response->set_next_page_token(absl::WebSafeBase64Escape(page.next));
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::GetMetrics(grpc::ServerContext* context,
                                        const v1::GetMetricsRequest* request,
                                        v1::GetMetricsResponse* response) {
  return guard_->Run(context, Method("GetMetrics"), [&](const Principal&) -> absl::Status {
    BERT_RETURN_IF_ERROR(manager_->GetJob(request->job_id()).status());
    if (request->page_size() < 0) {
      return absl::InvalidArgumentError("page_size: must not be negative");
    }
    if (request->names_size() > kMaxMetricNamesPerRequest) {
      return absl::InvalidArgumentError(absl::StrCat(
          "names: ", request->names_size(), " is over the limit of ", kMaxMetricNamesPerRequest));
    }
    std::string start;
    if (!request->page_token().empty() &&
        !absl::WebSafeBase64Unescape(request->page_token(), &start)) {
      return absl::InvalidArgumentError("page_token: not a token from a previous page");
    }
    const size_t page_size = request->page_size() == 0
                                 ? kMetricPagePoints
                                 : std::min<size_t>(request->page_size(), kMetricPagePoints);
    std::vector<std::string> names(request->names().begin(), request->names().end());
    BERT_ASSIGN_OR_RETURN(storage::Store::MetricPage page,
                          store_->ListMetricsPage(request->job_id(), names, start, page_size,
                                                  kMetricPageBytes));
    if (!page.next.empty()) response->set_next_page_token(absl::WebSafeBase64Escape(page.next));
    v1::MetricSeries* series = nullptr;
    for (auto& point : page.points) {
      if (series == nullptr || series->name() != point.name()) {
        series = response->add_series();
        series->set_name(point.name());
      }
      *series->add_points() = std::move(point);
    }
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::ListAgents(grpc::ServerContext* context,
                                        const v1::ListAgentsRequest* request,
                                        v1::ListAgentsResponse* response) {
  return guard_->Run(context, Method("ListAgents"), [&](const Principal&) {
    for (auto& agent : manager_->ListAgents(request->pool())) *response->add_agents() = std::move(agent);
    return absl::OkStatus();
  });
}

}  // namespace bert::server
