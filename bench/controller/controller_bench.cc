// bertd under many simulated agents heartbeating and streaming metrics.
//
//   bert_controller_bench [--agents 10,1000,10000] [--seconds 5] [--threads 8]
//                         [--metrics-per-report 10] [--dir /tmp/bench] [--bertd PATH]
//
// For each agent count, in one run: a real bertd process (the `bertd` beside
// this binary unless --bertd says otherwise) on loopback with a fresh RocksDB;
// one job per agent, so that each agent holds a live assignment (set up by
// `threads` client threads); then `threads` client threads drive the agents
// round-robin: each turn sends a ReportStage with `metrics-per-report` metric
// points (persisted events), and every 5th report of a thread is followed by
// that agent's Heartbeat (the same mix at every agent count). Prints the
// sustained events/s, p50/p99 latency per RPC, bertd's peak resident memory
// (VmHWM) and the setup time, then the ratios against the first agent count
// measured in the same run.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "grpcpp/create_channel.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr char kSpec[] =
    "name: bench\ncorpus:\n  sources:\n    - paths: [data/*.txt]\n      format: text\n"
    "model:\n  preset: bert-tiny\noutput:\n  dir: out\n";

struct Result {
  int agents = 0;
  double events_per_second = 0;
  double report_p50_ms = 0, report_p99_ms = 0, heartbeat_p50_ms = 0, heartbeat_p99_ms = 0;
  double peak_rss_mib = 0;
  double setup_seconds = 0;
  double cpu_ms_per_1k_events = 0;  // bertd's CPU time per 1,000 events
  int64_t errors = 0;
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "bert_controller_bench: " << what << "\n";
  std::exit(1);
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// A bertd child on loopback; killed (SIGTERM, then SIGKILL) on destruction.
class Bertd {
 public:
  Bertd(const std::string& binary, const std::string& dir) {
    const std::string port_file = dir + "/port";
    const std::string log = dir + "/bertd.log";
    std::vector<std::string> args = {binary,           "--listen",       "127.0.0.1:0",
                                     "--data-dir",     dir + "/data",    "--port-file",
                                     port_file,        "--no-check-paths", "--lease-ttl-ms",
                                     "600000",         "--heartbeat-interval-ms", "5000"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) Die("cannot start " + binary + ": " + std::strerror(rc));
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      std::ifstream in(port_file);
      if (in >> port_ && port_ > 0) return;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) Die("bertd exited at start; see " + log);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Die("bertd did not write " + port_file + " within 60 s");
  }
  ~Bertd() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }
  // CPU time (user + system) bertd has used so far, in seconds.
  double CpuSeconds() const {
    std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    }
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  // Peak resident set (VmHWM) so far, in MiB.
  double PeakRssMib() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    }
    return 0;
  }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

// Each agent registers, its job is submitted and the agent acquires it.
void SetUpAgents(int agents, int threads,
                 const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                 std::vector<bert::v1::AssignmentRef>* refs) {
  std::vector<std::thread> workers;
  std::atomic<bool> failed{false};
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto jobs = bert::v1::JobService::NewStub(channels[t]);
      auto agent_stub = bert::v1::AgentService::NewStub(channels[t]);
      for (int a = t; a < agents && !failed; a += threads) {
        grpc::ClientContext c1;
        bert::v1::RegisterRequest reg;
        reg.mutable_agent()->set_id("agent-" + std::to_string(a));
        reg.mutable_agent()->add_pools("cpu");
        bert::v1::RegisterResponse registered;
        grpc::ClientContext c2;
        bert::v1::SubmitJobRequest submit;
        submit.set_spec_yaml(kSpec);
        bert::v1::SubmitJobResponse submitted;
        grpc::ClientContext c3;
        bert::v1::AcquireAssignmentRequest acquire;
        acquire.set_agent_id(reg.agent().id());
        // Another thread's agent may take this job: every agent gets one in the end.
        acquire.set_wait_ms(30000);
        bert::v1::AcquireAssignmentResponse acquired;
        if (!agent_stub->Register(&c1, reg, &registered).ok() ||
            !jobs->SubmitJob(&c2, submit, &submitted).ok() ||
            !agent_stub->AcquireAssignment(&c3, acquire, &acquired).ok() ||
            !acquired.has_assignment()) {
          std::cerr << "agent " << a << " got no assignment\n";
          failed = true;
          return;
        }
        (*refs)[a] = acquired.assignment().ref();
      }
    });
  }
  for (auto& w : workers) w.join();
  if (failed) Die("setup failed");
}

Result RunOnce(const std::string& bertd_binary, int agents, double seconds, int threads,
               int metrics_per_report, const std::string& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  Result r;
  r.agents = agents;
  {
    Bertd bertd(bertd_binary, dir);
    const std::string address = "127.0.0.1:" + std::to_string(bertd.port());
    // A few channels shared by the client threads, as many agents' connections would be.
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    for (int i = 0; i < threads; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("bench_channel", i);  // distinct channels, not one shared subchannel
      channels.push_back(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
    }
    std::vector<bert::v1::AssignmentRef> refs(agents);
    const auto setup_start = Clock::now();
    SetUpAgents(agents, threads, channels, &refs);
    r.setup_seconds = std::chrono::duration<double>(Clock::now() - setup_start).count();

    const double cpu_start = bertd.CpuSeconds();
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
        int64_t step = 0, reports = 0;
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
            // One heartbeat per 5 reports, whatever the agent count (every 5th
            // turn would mean one per report while a turn outlasts the run).
            if (++reports % 5 == 0) {
              grpc::ClientContext hb_context;
              bert::v1::HeartbeatRequest hb;
              hb.set_agent_id("agent-" + std::to_string(a));
              *hb.add_running() = refs[a];
              bert::v1::HeartbeatResponse hb_response;
              auto h0 = Clock::now();
              if (!stub->Heartbeat(&hb_context, hb, &hb_response).ok()) ++errors;
              my_heartbeats.push_back(
                  std::chrono::duration<double, std::milli>(Clock::now() - h0).count());
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
    r.peak_rss_mib = bertd.PeakRssMib();
    r.cpu_ms_per_1k_events =
        1e6 * (bertd.CpuSeconds() - cpu_start) / std::max<double>(1, static_cast<double>(events.load()));
    r.events_per_second = static_cast<double>(events.load()) / elapsed;
    r.report_p50_ms = Percentile(report_ms, 0.50);
    r.report_p99_ms = Percentile(report_ms, 0.99);
    r.heartbeat_p50_ms = Percentile(heartbeat_ms, 0.50);
    r.heartbeat_p99_ms = Percentile(heartbeat_ms, 0.99);
    r.errors = errors.load();
  }
  fs::remove_all(dir);
  return r;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts = {10, 1000, 10000};
  double seconds = 5;
  int threads = 8;
  int metrics_per_report = 10;
  std::string dir = fs::temp_directory_path().string() + "/bert_controller_bench";
  std::error_code ec;
  std::string bertd = (fs::read_symlink("/proc/self/exe", ec).parent_path() / "bertd").string();
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Die("flag " + flag + " needs a value");
    const std::string value = argv[i + 1];
    try {
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
      } else if (flag == "--bertd") {
        bertd = value;
      } else {
        Die("unknown flag " + flag);
      }
    } catch (const std::exception&) {
      Die("bad value for " + flag + ": '" + value + "'");
    }
  }
  if (counts.empty() || threads < 1 || seconds <= 0) Die("nothing to run");
  std::printf("cpu: %s, %u cores; bertd: %s\n", CpuModel().c_str(),
              std::thread::hardware_concurrency(), bertd.c_str());
  std::vector<Result> results;
  std::printf("%8s %12s %10s %10s %10s %10s %12s %14s %9s %8s\n", "agents", "events/s",
              "rep p50ms", "rep p99ms", "hb p50ms", "hb p99ms", "bertd MiB", "cpu ms/1k ev",
              "setup s", "errors");
  for (int n : counts) {
    Result r = RunOnce(bertd, n, seconds, threads, metrics_per_report, dir);
    results.push_back(r);
    std::printf("%8d %12.0f %10.2f %10.2f %10.2f %10.2f %12.1f %14.1f %9.1f %8lld\n", r.agents,
                r.events_per_second, r.report_p50_ms, r.report_p99_ms, r.heartbeat_p50_ms,
                r.heartbeat_p99_ms, r.peak_rss_mib, r.cpu_ms_per_1k_events, r.setup_seconds,
                static_cast<long long>(r.errors));
    std::fflush(stdout);
  }
  for (size_t i = 1; i < results.size(); ++i) {
    std::printf("%d vs %d agents: events/s x%.2f, report p99 x%.2f, heartbeat p99 x%.2f, "
                "bertd peak memory x%.2f\n",
                results[i].agents, results[0].agents,
                results[i].events_per_second / std::max(1.0, results[0].events_per_second),
                results[i].report_p99_ms / std::max(1e-6, results[0].report_p99_ms),
                results[i].heartbeat_p99_ms / std::max(1e-6, results[0].heartbeat_p99_ms),
                results[i].peak_rss_mib / std::max(1e-6, results[0].peak_rss_mib));
  }
  return 0;
}
