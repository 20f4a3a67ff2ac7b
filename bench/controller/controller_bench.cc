// bertd under many simulated agents heartbeating and streaming metrics.
//
//   bert_controller_bench [--agents 10,100,1000] [--seconds 5] [--threads 8]
//                         [--metrics-per-report 10] [--dir /tmp/bench]
//
// For each agent count: an in-process controller on loopback with a fresh
// RocksDB, one job per agent so that each agent holds a live assignment, then
// `threads` client threads drive the agents round-robin: each turn sends a
// ReportStage with `metrics-per-report` metric points (persisted events) and,
// every 5th turn, a Heartbeat. Prints sustained events/s and p50/p99 latency
// per RPC, and the ratios against the smallest agent count measured in the
// same run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "server/controller.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kSpec[] =
    "name: bench\ncorpus:\n  sources:\n    - paths: [data/*.txt]\n      format: text\n"
    "model:\n  preset: bert-tiny\noutput:\n  dir: out\n";

struct Result {
  int agents = 0;
  double events_per_second = 0;
  double report_p50_ms = 0, report_p99_ms = 0, heartbeat_p50_ms = 0, heartbeat_p99_ms = 0;
  int64_t errors = 0;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

Result RunOnce(int agents, double seconds, int threads, int metrics_per_report, const std::string& dir) {
  std::filesystem::remove_all(dir);
  bert::server::ControllerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = dir;
  options.check_spec_paths = false;
  options.lease_ttl = absl::Seconds(600);
  options.heartbeat_interval = absl::Seconds(5);
  auto controller = bert::server::Controller::Start(options);
  if (!controller.ok()) {
    std::cerr << controller.status() << "\n";
    std::exit(1);
  }
  const std::string address = "127.0.0.1:" + std::to_string((*controller)->port());
  // A few channels shared by the client threads, as many agents' connections would be.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < threads; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("bench_channel", i);  // distinct channels, not one shared subchannel
    channels.push_back(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  auto jobs = bert::v1::JobService::NewStub(channels[0]);
  auto setup = bert::v1::AgentService::NewStub(channels[0]);
  std::vector<bert::v1::AssignmentRef> refs(agents);
  for (int a = 0; a < agents; ++a) {
    grpc::ClientContext c1;
    bert::v1::SubmitJobRequest submit;
    submit.set_spec_yaml(kSpec);
    bert::v1::SubmitJobResponse submitted;
    if (!jobs->SubmitJob(&c1, submit, &submitted).ok()) std::exit(1);
    grpc::ClientContext c2;
    bert::v1::RegisterRequest reg;
    reg.mutable_agent()->set_id("agent-" + std::to_string(a));
    reg.mutable_agent()->add_pools("cpu");
    bert::v1::RegisterResponse registered;
    if (!setup->Register(&c2, reg, &registered).ok()) std::exit(1);
    grpc::ClientContext c3;
    bert::v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id(reg.agent().id());
    bert::v1::AcquireAssignmentResponse acquired;
    if (!setup->AcquireAssignment(&c3, acquire, &acquired).ok() || !acquired.has_assignment()) {
      std::cerr << "agent " << a << " got no assignment\n";
      std::exit(1);
    }
    refs[a] = acquired.assignment().ref();
  }

  std::atomic<int64_t> events{0}, errors{0};
  std::mutex mu;
  std::vector<double> report_ms, heartbeat_ms;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto stub = bert::v1::AgentService::NewStub(channels[t]);
      std::vector<double> my_reports, my_heartbeats;
      int64_t step = 0;
      for (int turn = 0; Clock::now() < end; ++turn) {
        for (int a = t; a < agents && Clock::now() < end; a += threads) {
          bert::v1::ReportStageRequest report;
          *report.mutable_ref() = refs[a];
          for (int m = 0; m < metrics_per_report; ++m) {
            bert::v1::MetricPoint* point = report.add_reports()->mutable_metric();
            point->set_name(m % 2 == 0 ? "train/loss" : "train/learning_rate");
            point->set_value(1.0 / static_cast<double>(++step));
            point->set_step(step);
          }
          grpc::ClientContext context;
          bert::v1::ReportStageResponse response;
          auto t0 = Clock::now();
          grpc::Status s = stub->ReportStage(&context, report, &response);
          my_reports.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          if (s.ok()) {
            events += metrics_per_report;
          } else {
            ++errors;
          }
          if (turn % 5 == 0) {
            grpc::ClientContext hb_context;
            bert::v1::HeartbeatRequest hb;
            hb.set_agent_id("agent-" + std::to_string(a));
            *hb.add_running() = refs[a];
            bert::v1::HeartbeatResponse hb_response;
            auto h0 = Clock::now();
            if (!stub->Heartbeat(&hb_context, hb, &hb_response).ok()) ++errors;
            my_heartbeats.push_back(std::chrono::duration<double, std::milli>(Clock::now() - h0).count());
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      report_ms.insert(report_ms.end(), my_reports.begin(), my_reports.end());
      heartbeat_ms.insert(heartbeat_ms.end(), my_heartbeats.begin(), my_heartbeats.end());
    });
  }
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  (*controller)->Shutdown();
  controller->reset();
  std::filesystem::remove_all(dir);
  Result r;
  r.agents = agents;
  r.events_per_second = static_cast<double>(events.load()) / elapsed;
  r.report_p50_ms = Percentile(report_ms, 0.50);
  r.report_p99_ms = Percentile(report_ms, 0.99);
  r.heartbeat_p50_ms = Percentile(heartbeat_ms, 0.50);
  r.heartbeat_p99_ms = Percentile(heartbeat_ms, 0.99);
  r.errors = errors.load();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts = {10, 100, 1000};
  double seconds = 5;
  int threads = 8;
  int metrics_per_report = 10;
  std::string dir = std::filesystem::temp_directory_path().string() + "/bert_controller_bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--agents") {
      counts.clear();
      std::stringstream ss(value);
      for (std::string part; std::getline(ss, part, ',');) counts.push_back(std::stoi(part));
    } else if (flag == "--seconds") {
      seconds = std::stod(value);
    } else if (flag == "--threads") {
      threads = std::stoi(value);
    } else if (flag == "--metrics-per-report") {
      metrics_per_report = std::stoi(value);
    } else if (flag == "--dir") {
      dir = value;
    } else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  std::vector<Result> results;
  std::printf("%8s %12s %10s %10s %10s %10s %8s\n", "agents", "events/s", "rep p50ms",
              "rep p99ms", "hb p50ms", "hb p99ms", "errors");
  for (int n : counts) {
    Result r = RunOnce(n, seconds, threads, metrics_per_report, dir);
    results.push_back(r);
    std::printf("%8d %12.0f %10.2f %10.2f %10.2f %10.2f %8lld\n", r.agents, r.events_per_second,
                r.report_p50_ms, r.report_p99_ms, r.heartbeat_p50_ms, r.heartbeat_p99_ms,
                static_cast<long long>(r.errors));
    std::fflush(stdout);
  }
  for (size_t i = 1; i < results.size(); ++i) {
    std::printf("%d vs %d agents: events/s x%.2f, report p99 x%.2f, heartbeat p99 x%.2f\n",
                results[i].agents, results[0].agents,
                results[i].events_per_second / std::max(1.0, results[0].events_per_second),
                results[i].report_p99_ms / std::max(1e-6, results[0].report_p99_ms),
                results[i].heartbeat_p99_ms / std::max(1e-6, results[0].heartbeat_p99_ms));
  }
  return 0;
}
