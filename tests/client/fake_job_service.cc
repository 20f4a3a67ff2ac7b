#include "tests/client/fake_job_service.h"

namespace bert::client::testing {
namespace {

bert::v1::Event MakeEvent(int64_t seq) {
  bert::v1::Event event;
  event.set_job_id("job-1");
  event.set_seq(seq);
  event.mutable_time()->set_seconds(1'800'000'000 + seq);
  return event;
}

}  // namespace

FakeJobService::FakeJobService() {
  job_.set_id("job-1");
  job_.set_name("tiny");
  job_.set_state(bert::v1::SUCCEEDED);
  job_.mutable_spec()->set_name("tiny");
  for (auto kind : {bert::v1::PREPARE, bert::v1::TOKENIZER, bert::v1::PREPROCESS,
                    bert::v1::PRETRAIN, bert::v1::EXPORT}) {
    bert::v1::Stage* stage = job_.add_stages();
    stage->set_kind(kind);
    stage->set_state(bert::v1::SUCCEEDED);
    stage->set_attempt(1);
    stage->set_max_attempts(3);
  }
  (*job_.mutable_latest_metrics())["train/loss"] = 6.5;
  int64_t seq = 0;
  auto add = [&](auto fill) {
    bert::v1::Event event = MakeEvent(++seq);
    fill(event);
    events_.push_back(event);
  };
  add([](bert::v1::Event& e) {
    e.mutable_job()->set_from(bert::v1::QUEUED);
    e.mutable_job()->set_to(bert::v1::RUNNING);
  });
  for (auto kind : {bert::v1::PREPARE, bert::v1::TOKENIZER, bert::v1::PREPROCESS,
                    bert::v1::PRETRAIN, bert::v1::EXPORT}) {
    add([&](bert::v1::Event& e) {
      e.mutable_stage()->set_stage(kind);
      e.mutable_stage()->set_to(bert::v1::RUNNING);
      e.mutable_stage()->set_attempt(1);
    });
    for (int done = 5; done <= 10; done += 5) {
      add([&](bert::v1::Event& e) {
        e.mutable_progress()->set_stage(kind);
        e.mutable_progress()->mutable_progress()->set_done(done);
        e.mutable_progress()->mutable_progress()->set_total(10);
        e.mutable_progress()->mutable_progress()->set_unit("steps");
        e.mutable_progress()->mutable_progress()->set_rate_per_second(2.5);
        e.mutable_progress()->mutable_progress()->set_eta_seconds(10 - done);
      });
      if (kind == bert::v1::PRETRAIN) {
        add([&](bert::v1::Event& e) {
          e.mutable_metric()->set_name("train/loss");
          e.mutable_metric()->set_value(done == 5 ? 7.25 : 6.5);
          e.mutable_metric()->set_step(done);
        });
      }
    }
    if (kind == bert::v1::PRETRAIN) {
      add([](bert::v1::Event& e) {
        e.mutable_log()->set_stage(bert::v1::PRETRAIN);
        e.mutable_log()->set_level("info");
        e.mutable_log()->set_message("saved checkpoint-10");
      });
    }
    add([&](bert::v1::Event& e) {
      e.mutable_stage()->set_stage(kind);
      e.mutable_stage()->set_from(bert::v1::RUNNING);
      e.mutable_stage()->set_to(bert::v1::SUCCEEDED);
      e.mutable_stage()->set_attempt(1);
    });
  }
  add([](bert::v1::Event& e) {
    e.mutable_job()->set_from(bert::v1::RUNNING);
    e.mutable_job()->set_to(bert::v1::SUCCEEDED);
  });
  job_.set_last_event_seq(seq);
}

void FakeJobService::RequireToken(std::string token) {
  std::lock_guard<std::mutex> lock(mu_);
  token_ = std::move(token);
}

void FakeJobService::DropFirstStreamAfter(int events) {
  std::lock_guard<std::mutex> lock(mu_);
  drop_after_ = events;
}

std::vector<bert::v1::SubmitJobRequest> FakeJobService::submitted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return submitted_;
}

std::vector<int64_t> FakeJobService::watch_after_seqs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return watch_after_seqs_;
}

int64_t FakeJobService::event_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(events_.size());
}

grpc::Status FakeJobService::CheckToken(grpc::ServerContext* context) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (token_.empty()) return grpc::Status::OK;
  auto it = context->client_metadata().find("authorization");
  if (it == context->client_metadata().end() ||
      std::string(it->second.data(), it->second.size()) != "Bearer " + token_) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token");
  }
  return grpc::Status::OK;
}

grpc::Status FakeJobService::SubmitJob(grpc::ServerContext* context,
                                       const bert::v1::SubmitJobRequest* request,
                                       bert::v1::SubmitJobResponse* response) {
  if (auto status = CheckToken(context); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mu_);
  submitted_.push_back(*request);
  *response->mutable_job() = job_;
  response->mutable_job()->set_state(bert::v1::QUEUED);
  return grpc::Status::OK;
}

grpc::Status FakeJobService::GetJob(grpc::ServerContext* context,
                                    const bert::v1::GetJobRequest* request,
                                    bert::v1::Job* response) {
  if (auto status = CheckToken(context); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mu_);
  if (request->job_id() != job_.id()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "job " + request->job_id() + " not found");
  }
  *response = job_;
  return grpc::Status::OK;
}

grpc::Status FakeJobService::ListJobs(grpc::ServerContext* context,
                                      const bert::v1::ListJobsRequest* request,
                                      bert::v1::ListJobsResponse* response) {
  if (auto status = CheckToken(context); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mu_);
  *response->add_jobs() = job_;
  return grpc::Status::OK;
}

grpc::Status FakeJobService::CancelJob(grpc::ServerContext* context,
                                       const bert::v1::CancelJobRequest* request,
                                       bert::v1::Job* response) {
  if (auto status = CheckToken(context); !status.ok()) return status;
  std::lock_guard<std::mutex> lock(mu_);
  if (request->job_id() != job_.id()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job");
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "job job-1 already finished");
}

grpc::Status FakeJobService::WatchJob(grpc::ServerContext* context,
                                      const bert::v1::WatchJobRequest* request,
                                      grpc::ServerWriter<bert::v1::Event>* writer) {
  if (auto status = CheckToken(context); !status.ok()) return status;
  std::vector<bert::v1::Event> events;
  int drop_after = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (request->job_id() != job_.id()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job");
    watch_after_seqs_.push_back(request->after_seq());
    events = events_;
    std::swap(drop_after, drop_after_);  // only the first stream drops
  }
  int sent = 0;
  for (const bert::v1::Event& event : events) {
    if (event.seq() <= request->after_seq()) continue;
    if (sent == drop_after)
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller restarting");
    writer->Write(event);
    ++sent;
  }
  return grpc::Status::OK;
}

grpc::Status FakeJobService::ListCheckpoints(grpc::ServerContext* context,
                                             const bert::v1::ListCheckpointsRequest* request,
                                             bert::v1::ListCheckpointsResponse* response) {
  if (auto status = CheckToken(context); !status.ok()) return status;
  bert::v1::CheckpointRecord* checkpoint = response->add_checkpoints();
  checkpoint->set_job_id("job-1");
  checkpoint->set_step(10);
  checkpoint->mutable_artifact()->set_uri("file:///artifacts/job-1/pretrain/checkpoint-10");
  checkpoint->mutable_artifact()->set_size_bytes(123456);
  (*checkpoint->mutable_metrics())["train/loss"] = 6.5;
  return grpc::Status::OK;
}

grpc::Status FakeJobService::GetMetrics(grpc::ServerContext* context,
                                        const bert::v1::GetMetricsRequest* request,
                                        bert::v1::GetMetricsResponse* response) {
  if (auto status = CheckToken(context); !status.ok()) return status;
  bert::v1::MetricSeries* series = response->add_series();
  series->set_name("train/loss");
  for (int step : {5, 10}) {
    bert::v1::MetricPoint* point = series->add_points();
    point->set_name("train/loss");
    point->set_step(step);
    point->set_value(step == 5 ? 7.25 : 6.5);
  }
  return grpc::Status::OK;
}

grpc::Status FakeJobService::ListAgents(grpc::ServerContext* context,
                                        const bert::v1::ListAgentsRequest* request,
                                        bert::v1::ListAgentsResponse* response) {
  if (auto status = CheckToken(context); !status.ok()) return status;
  bert::v1::AgentInfo* agent = response->add_agents();
  agent->set_id("agent-a");
  agent->set_hostname("localhost");
  agent->add_pools("cpu");
  agent->add_pools("train");
  agent->set_healthy(true);
  agent->mutable_resources()->set_cpu_cores(8);
  agent->mutable_resources()->set_memory_bytes(int64_t{16} << 30);
  (*agent->mutable_labels())["zone"] = "lab-1";
  return grpc::Status::OK;
}

FakeServer::FakeServer(FakeJobService* service) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(service);
  server_ = builder.BuildAndStart();
}

FakeServer::~FakeServer() { server_->Shutdown(); }

}  // namespace bert::client::testing
