// The whole controller in one object: store, job manager, event bus, auth,
// artifact store, the gRPC server (JobService, AgentService, grpc.health.v1,
// and reflection when no tokens file is configured) and the lease ticker. bertd's main and in-process tests and
// benchmarks start it the same way.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "metrics/controller_metrics.h"
#include "server/agent_service.h"
#include "server/artifact_store.h"
#include "server/auth.h"
#include "server/clock.h"
#include "server/event_bus.h"
#include "server/input_store.h"
#include "server/job_manager.h"
#include "server/job_service.h"
#include "server/rpc_guard.h"
#include "storage/store.h"

namespace bert::server {

struct ControllerOptions {
  std::string listen = "127.0.0.1:7070";  // HOST:PORT; port 0 picks a free one
  std::string data_dir;                   // RocksDB in data_dir/db, artifacts in data_dir/artifacts
  std::string tokens_file;                // empty: no authentication (loopback only)
  std::string tls_cert, tls_key;          // PEM files; both or neither
  std::string tls_client_ca;              // PEM; agents must present a client certificate
  // Refuse to serve without TLS and tokens on a non-loopback address unless set.
  bool allow_insecure = false;
  absl::Duration lease_ttl = absl::Seconds(15);
  // The least lease agents get after a restart (JobManagerOptions::restart_grace).
  absl::Duration restart_grace = absl::Seconds(30);
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration tick_interval = absl::Milliseconds(500);
  // The deletion collector's period (JobManager::CollectGarbage; it also runs
  // at startup), and how long finished jobs are kept (zero: until deleted).
  absl::Duration collect_interval = absl::Minutes(10);
  absl::Duration finished_job_retention = absl::ZeroDuration();
  bool check_spec_paths = true;
  int max_message_bytes = 16 << 20;       // requests larger than this are refused
  EventBusOptions watches;                // bounds on concurrent WatchJob streams
  // Directories besides data_dir/artifacts that agents may name in file://
  // artifacts (a filesystem the controller and agents share): absolute.
  std::vector<std::string> shared_artifact_roots;
  // --shared-output-root: an absolute directory the export agents write
  // models under; a spec's output.dir under it is written there, any other
  // is pulled by the submitter (protocol/output_dir.h). Empty: none.
  std::string shared_output_root;
  // Uploads from submitting machines (JobService.UploadInput, input_store.h):
  // directories every data-prep agent reads at the same path
  // (--shared-input-root; spec paths under them are not uploaded), whether
  // the agents read the submitter's spec directory (the single-user
  // embedded default), and the largest file accepted (0: none).
  std::vector<std::string> shared_input_roots;
  bool spec_dir_shared = false;
  int64_t max_upload_bytes = kDefaultMaxUploadBytes;
  // Extra tokens (e.g. the embedded agent's), added to the tokens file's.
  std::vector<std::pair<std::string, Principal>> extra_tokens;
};

// Thread-safe: Shutdown may be called from any thread.
class Controller {
 public:
  // Opens the store, reconciles, and starts serving.
  static absl::StatusOr<std::unique_ptr<Controller>> Start(
      ControllerOptions options, std::shared_ptr<metrics::ControllerMetrics> metrics = nullptr);
  ~Controller();

  int port() const { return port_; }
  // Stops accepting calls, waits up to `grace` for running ones, stops the ticker.
  void Shutdown(absl::Duration grace = absl::Seconds(2));
  JobManager* manager() { return manager_.get(); }
  const EventBus& bus() const { return *bus_; }

 private:
  Controller() = default;
  void TickLoop();
  void CollectLoop();

  ControllerOptions options_;
  RealClock clock_;
  std::shared_ptr<metrics::ControllerMetrics> metrics_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<EventBus> bus_;
  std::unique_ptr<JobManager> manager_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<RpcGuard> guard_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<ArtifactAdmission> admission_;
  std::unique_ptr<InputStore> inputs_;
  std::unique_ptr<JobServiceImpl> job_service_;
  std::unique_ptr<AgentServiceImpl> agent_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Notification stop_;
  std::thread ticker_;
  std::thread collector_;  // deletes on its own thread: a big delete never delays lease checks
  std::atomic<bool> shut_down_{false};
};

// True for "127.0.0.1:…", "localhost:…", "[::1]:…".
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace bert::server
