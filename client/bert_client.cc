#include "client/bert_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "protocol/grpc_status.h"

namespace bert::client {
namespace {

// Responses (a job with its spec, a metric series) can be large; bertd caps
// its own messages, so the client accepts what the server may send.
constexpr int kMaxReceiveBytes = 64 << 20;

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  if (path.empty()) return std::string();
  auto pem = bert::ReadFile(path);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, ": ", pem.status().message()));
  }
  return *pem;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BertClient>> BertClient::Create(const ClientOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("no server address given");
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls_ca_file.empty() && options.tls_cert_file.empty() &&
      options.tls_key_file.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    grpc::SslCredentialsOptions ssl;
    auto ca = ReadPem(options.tls_ca_file, "the TLS CA certificate");
    auto cert = ReadPem(options.tls_cert_file, "the TLS client certificate");
    auto key = ReadPem(options.tls_key_file, "the TLS client key");
    for (const auto* read : {&ca, &cert, &key}) {
      if (!read->ok()) return read->status();
    }
    ssl.pem_root_certs = *ca;
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  // A restarted bertd is found again within seconds (gRPC's default waits up
  // to two minutes between connection attempts); WatchJob relies on it.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  auto channel = grpc::CreateCustomChannel(options.address, credentials, args);
  return std::make_unique<BertClient>(std::move(channel), options);
}

BertClient::BertClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(bert::v1::JobService::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> BertClient::NewContext(bool streaming) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!streaming && options_.timeout_ms > 0) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(options_.timeout_ms));
  }
  if (!options_.token.empty()) context->AddMetadata("authorization", "Bearer " + options_.token);
  return context;
}

absl::StatusOr<bert::v1::SubmitJobResponse> BertClient::SubmitJob(
    const bert::v1::SubmitJobRequest& request) {
  bert::v1::SubmitJobResponse response;
  auto context = NewContext(false);
  absl::Status status =
      protocol::FromGrpcStatus(stub_->SubmitJob(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<bert::v1::ValidateSpecResponse> BertClient::ValidateSpec(
    const bert::v1::ValidateSpecRequest& request) {
  bert::v1::ValidateSpecResponse response;
  auto context = NewContext(false);
  absl::Status status =
      protocol::FromGrpcStatus(stub_->ValidateSpec(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<bert::v1::Job> BertClient::GetJob(const std::string& job_id) {
  bert::v1::GetJobRequest request;
  request.set_job_id(job_id);
  bert::v1::Job job;
  auto context = NewContext(false);
  absl::Status status = protocol::FromGrpcStatus(stub_->GetJob(context.get(), request, &job));
  if (!status.ok()) return status;
  return job;
}

absl::StatusOr<bert::v1::ListJobsResponse> BertClient::ListJobs(
    const bert::v1::ListJobsRequest& request) {
  bert::v1::ListJobsResponse response;
  auto context = NewContext(false);
  absl::Status status =
      protocol::FromGrpcStatus(stub_->ListJobs(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<bert::v1::Job> BertClient::CancelJob(const std::string& job_id,
                                                    const std::string& reason) {
  bert::v1::CancelJobRequest request;
  request.set_job_id(job_id);
  request.set_reason(reason);
  bert::v1::Job job;
  auto context = NewContext(false);
  absl::Status status = protocol::FromGrpcStatus(stub_->CancelJob(context.get(), request, &job));
  if (!status.ok()) return status;
  return job;
}

absl::StatusOr<bert::v1::ListCheckpointsResponse> BertClient::ListCheckpoints(
    const std::string& job_id) {
  // Every page, merged (a job holds at most 10,000 records).
  bert::v1::ListCheckpointsRequest request;
  request.set_job_id(job_id);
  bert::v1::ListCheckpointsResponse all;
  do {
    bert::v1::ListCheckpointsResponse page;
    auto context = NewContext(false);
    absl::Status status =
        protocol::FromGrpcStatus(stub_->ListCheckpoints(context.get(), request, &page));
    if (!status.ok()) return status;
    for (auto& record : *page.mutable_checkpoints()) *all.add_checkpoints() = std::move(record);
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return all;
}

absl::StatusOr<bert::v1::GetMetricsResponse> BertClient::GetMetrics(
    const std::string& job_id, const std::vector<std::string>& names, int page_size) {
  bert::v1::GetMetricsRequest request;
  request.set_job_id(job_id);
  for (const std::string& name : names) request.add_names(name);
  request.set_page_size(page_size);
  bert::v1::GetMetricsResponse all;
  // bertd sends the points in (name, seq) order a page at a time; a series
  // that spans pages is joined back into one.
  do {
    bert::v1::GetMetricsResponse page;
    auto context = NewContext(false);
    absl::Status status =
        protocol::FromGrpcStatus(stub_->GetMetrics(context.get(), request, &page));
    if (!status.ok()) return status;
    for (bert::v1::MetricSeries& series : *page.mutable_series()) {
      const int last = all.series_size() - 1;
      if (last >= 0 && all.series(last).name() == series.name()) {
        for (auto& point : *series.mutable_points()) {
          *all.mutable_series(last)->add_points() = std::move(point);
        }
      } else {
        *all.add_series() = std::move(series);
      }
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return all;
}

absl::StatusOr<bert::v1::ListAgentsResponse> BertClient::ListAgents(const std::string& pool) {
  bert::v1::ListAgentsRequest request;
  request.set_pool(pool);
  bert::v1::ListAgentsResponse response;
  auto context = NewContext(false);
  absl::Status status =
      protocol::FromGrpcStatus(stub_->ListAgents(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

namespace {

bool IsFinalJobState(bert::v1::State state) {
  return state == bert::v1::SUCCEEDED || state == bert::v1::FAILED ||
         state == bert::v1::CANCELLED || state == bert::v1::SKIPPED;
}

}  // namespace

absl::Status BertClient::WatchJob(const std::string& job_id, const WatchOptions& options,
                                  const std::function<bool(const bert::v1::Event&)>& on_event) {
  using Clock = std::chrono::steady_clock;
  int64_t last_seq = options.after_seq;
  int failures = 0;
  std::chrono::milliseconds backoff(200);
  Clock::time_point first_failure{};  // of the current run of failed tries
  bool job_finished = false;          // a job transition to a final state was delivered
  while (true) {
    bert::v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_seq(last_seq);
    request.set_follow(options.follow);
    auto context = NewContext(true);
    std::unique_ptr<grpc::ClientReader<bert::v1::Event>> reader =
        stub_->WatchJob(context.get(), request);
    bert::v1::Event event;
    bool progressed = false;
    while (reader->Read(&event)) {
      if (event.seq() <= last_seq) continue;  // a replay after reconnecting
      last_seq = event.seq();
      progressed = true;
      if (event.has_job() && IsFinalJobState(event.job().to())) job_finished = true;
      if (!on_event(event)) {
        context->TryCancel();
        reader->Finish();
        return absl::OkStatus();
      }
    }
    absl::Status status = protocol::FromGrpcStatus(reader->Finish());
    if (status.ok()) {
      if (!options.follow || job_finished) return status;
      // bertd ends a followed stream only when the job finished; a stream
      // that ended otherwise (a proxy, a restart) is resumed, unless the job
      // says it is finished (its final transition was before after_seq) or
      // paused (should bertd end streams there).
      auto job = GetJob(job_id);
      if (!job.ok() || IsFinalJobState(job->state()) || job->state() == bert::v1::PAUSED) {
        return job.status();
      }
      status = absl::UnavailableError("the event stream ended before the job finished");
    }
    // Only a dropped connection is worth retrying; NotFound etc. are answers.
    // CANCELLED comes from bertd shutting down (this side cancels only above).
    const bool transient = status.code() == absl::StatusCode::kUnavailable ||
                           status.code() == absl::StatusCode::kDeadlineExceeded ||
                           status.code() == absl::StatusCode::kAborted ||
                           status.code() == absl::StatusCode::kInternal ||
                           status.code() == absl::StatusCode::kCancelled;
    if (!transient) return status;
    if (progressed || failures == 0) {
      failures = 0;
      backoff = std::chrono::milliseconds(200);
      first_failure = Clock::now();
    }
    ++failures;
    if (options.reconnect_timeout_ms > 0) {
      const auto waited = Clock::now() - first_failure;
      if (waited + backoff > std::chrono::milliseconds(options.reconnect_timeout_ms)) {
        return absl::UnavailableError(
            absl::StrCat("gave up reconnecting to the event stream of job ", job_id, " after ",
                         std::chrono::duration_cast<std::chrono::seconds>(waited).count(),
                         "s: ", status.ToString()));
      }
    } else if (failures > options.max_reconnects) {
      return status;
    }
    if (options.on_reconnect) options.on_reconnect(status, backoff.count(), last_seq);
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

}  // namespace bert::client
