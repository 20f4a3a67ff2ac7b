// The agent's life: register with the controller, keep the lease alive with
// heartbeats, take assignments that fit, run each on its own thread, stream
// its reports and complete it. Survives controller restarts (every call is
// retried; reports stay queued) and re-registers when the controller forgot it.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "agent/artifact_transfer.h"
#include "agent/assignment_runner.h"
#include "agent/batching_reporter.h"
#include "bert/v1/agent_service.grpc.pb.h"
#include "metrics/agent_metrics.h"

namespace bert::agent {

struct AgentOptions {
  std::string server;  // host:port of bertd
  std::string token;   // bearer token; empty = none
  std::string tls_ca;  // PEM file; empty = plaintext (loopback)
  std::string id;      // empty: persisted or derived (agent_id.h)
  std::vector<std::string> pools = {"cpu", "train"};
  std::map<std::string, std::string> labels;
  std::string work_dir;
  bool shared_fs = false;
  std::string worker_path;           // bert-worker
  std::string accelerator = "auto";  // "auto", "cpu", "cuda" or "hpu"
  std::string address;               // reachable by other agents; default: hostname
  int threads = 0;                   // per stage; 0 = all cores
  int slots = 1;                     // assignments run at once
  std::chrono::milliseconds report_interval{300};
  std::chrono::milliseconds cancel_grace{10000};
  // Prometheus metrics (bert_agent_*); null: none. Not owned; outlives the agent.
  metrics::AgentMetrics* metrics = nullptr;
};

// Run() blocks until Stop(); Stop() may be called from any thread (or a signal
// handler's helper thread).
class Agent {
 public:
  explicit Agent(AgentOptions options);
  ~Agent();

  absl::Status Run();
  void Stop();

 private:
  struct Running {
    v1::AssignmentRef ref;
    std::shared_ptr<BatchingReporter> reporter;  // null until inputs are ready
    std::thread thread;
    std::atomic<bool> done{false};
    std::atomic<bool> cancel{false};
  };

  absl::Status Register();
  void HeartbeatLoop();
  void RunOne(Running* running, v1::Assignment assignment);
  void Complete(const v1::AssignmentRef& ref, const absl::StatusOr<std::vector<v1::Artifact>>& r);
  void ReapFinished();
  std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) const;
  bool Sleep(std::chrono::milliseconds d);  // false when stopping
  // Records a finished call to the controller (when metrics are on) and returns `status`.
  absl::Status Observed(std::string_view method, std::chrono::steady_clock::time_point start,
                        absl::Status status) const;

  AgentOptions options_;
  std::shared_ptr<v1::AgentService::Stub> stub_;
  std::unique_ptr<ArtifactTransfer> transfer_;
  RunnerEnvironment env_;
  v1::AgentInfo info_;
  std::string agent_id_;
  std::atomic<int64_t> heartbeat_ms_{2000};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool need_register_ = false;
  std::vector<std::unique_ptr<Running>> running_;
  grpc::ClientContext* acquiring_ = nullptr;  // the long-poll in flight, cancelled by Stop()
};

}  // namespace bert::agent
