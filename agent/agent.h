// The agent's life: register with the controller, keep the lease alive with
// heartbeats, take assignments that fit, run each on its own thread, stream
// its reports and complete it. Survives controller restarts (every call is
// retried; reports stay queued) and re-registers when the controller forgot it.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/artifact_transfer.h"
#include "agent/assignment_runner.h"
#include "agent/batching_reporter.h"
#include "agent/gang_rendezvous.h"
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
  // Which worker runs pretrain and export (agent/worker_front.h): "auto" (the
  // Python front for hpu), "native" or "python"; and the Python front's path.
  std::string worker_front = "auto";
  std::string python_worker_path;  // bert-worker-py
  std::string accelerator = "auto";  // "auto", "cpu", "cuda" or "hpu"
  std::string address;               // reachable by other agents; default: hostname
  int threads = 0;                   // per stage; 0 = all cores
  int slots = 1;                     // assignments run at once
  std::chrono::milliseconds report_interval{300};
  std::chrono::milliseconds cancel_grace{10000};
  // Corpus inputs are read only under these directories (--data-root); empty: anywhere.
  std::vector<std::string> data_roots;
  // Each job's spec directory is a data root too (--spec-dir-root; data_roots.h).
  bool spec_dir_root = false;
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
    std::shared_ptr<BatchingReporter> reporter;  // null until inputs are ready; guarded by mu_
    std::thread thread;
    std::atomic<bool> done{false};
    std::atomic<bool> cancel{false};
    std::atomic<bool> pause{false};  // the job is pausing (HeartbeatResponse.pause)
  };

  // One registration at a time (the main loop and the heartbeat both re-register).
  absl::Status Register() ABSL_LOCKS_EXCLUDED(register_mu_, mu_);
  void HeartbeatLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void RunOne(Running* running, v1::Assignment assignment) ABSL_LOCKS_EXCLUDED(mu_);
  void Complete(const v1::AssignmentRef& ref, const absl::StatusOr<std::vector<v1::Artifact>>& r);
  void ReapFinished() ABSL_LOCKS_EXCLUDED(mu_);
  std::string AgentId() const ABSL_LOCKS_EXCLUDED(mu_);
  std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) const;
  bool Sleep(std::chrono::milliseconds d) ABSL_LOCKS_EXCLUDED(mu_);  // false when stopping
  // Records a finished call to the controller (when metrics are on) and returns `status`.
  absl::Status Observed(std::string_view method, std::chrono::steady_clock::time_point start,
                        absl::Status status) const;

  AgentOptions options_;
  std::shared_ptr<v1::AgentService::Stub> stub_;
  std::unique_ptr<ArtifactTransfer> transfer_;
  std::unique_ptr<GrpcRendezvousChannel> rendezvous_;
  RunnerEnvironment env_;
  v1::AgentInfo info_;  // written by Run() before the heartbeat starts, read-only after
  std::atomic<int64_t> heartbeat_ms_{2000};

  absl::Mutex register_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // signalled when an assignment finishes, and by Stop()
  std::string agent_id_ ABSL_GUARDED_BY(mu_);  // the controller may rename us on Register
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Running::reporter is guarded by mu_ as well; Running::ref is set before the thread starts.
  std::vector<std::unique_ptr<Running>> running_ ABSL_GUARDED_BY(mu_);
  // The long-poll in flight, cancelled by Stop().
  grpc::ClientContext* acquiring_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace bert::agent
