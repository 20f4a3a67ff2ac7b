// A small cluster of real processes for end-to-end tests, on loopback (or on
// the hosts of a HostNetwork: PlaceController, StartAgentOn): bertd
// and bert-agents started from $BERT_BIN_DIR, each with its own log file in
// the cluster's temporary directory, plus gRPC clients for both services.
// Processes are killed (SIGKILL to their process groups) when the Cluster is
// destroyed. Not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "tests/testing/child_process.h"
#include "tests/testing/temp_dir.h"

namespace bert::e2e {

class Cluster {
 public:
  // `name` starts the temporary directory's name (per test); it is removed
  // afterwards unless $BERT_KEEP_TEST_DIRS is set.
  explicit Cluster(const std::string& name);
  ~Cluster();

  static std::string BinDir();
  static std::string SourceDir();
  // What is missing to run end-to-end tests ("" when all `binaries` exist).
  static std::string Missing(const std::vector<std::string>& binaries = {"bertd", "bert-agent",
                                                                         "bert-worker"});

  const std::string& dir() const { return dir_; }

  // Runs bertd through `prefix` (e.g. HostNetwork::Prefix, "" for here),
  // listening on `address` (without TLS: --allow-insecure beyond loopback);
  // agents and the test's clients reach it there. Before StartController.
  void PlaceController(std::vector<std::string> prefix, std::string address);
  // "address:port" of bertd.
  std::string ControllerTarget() const;

  // Starts bertd on a free port (the same port again after a restart).
  void StartController(const std::vector<std::string>& extra = {});
  void KillController();  // SIGKILL
  testing::ChildProcess* controller() { return bertd_.get(); }

  // Starts an agent with `id`, serving `pools`; shared_fs as it says.
  testing::ChildProcess* StartAgent(const std::string& id, const std::string& pools, bool shared_fs,
                                    const std::vector<std::string>& extra = {});
  // The same, run through `prefix` (another host), working in `work_dir`.
  testing::ChildProcess* StartAgentOn(const std::vector<std::string>& prefix,
                                      const std::string& work_dir, const std::string& id,
                                      const std::string& pools, bool shared_fs,
                                      const std::vector<std::string>& extra = {});
  void KillAgent(const std::string& id);  // SIGKILL

  v1::JobService::Stub& jobs() { return *jobs_; }
  v1::AgentService::Stub& agents() { return *agents_; }

  // Submits YAML (relative paths resolve against base_dir); returns the job id.
  std::string Submit(const std::string& yaml, const std::string& base_dir);
  v1::Job GetJob(const std::string& id);
  // Polls until pred(job) or the timeout; returns the last job seen.
  v1::Job WaitFor(const std::string& id, const std::function<bool(const v1::Job&)>& pred,
                  std::chrono::seconds timeout);
  std::vector<v1::Event> Events(const std::string& id);
  // The tail of every process log, for failure messages.
  std::string Logs() const;

 private:
  void Connect();

  testing::TempDir temp_dir_;  // outlives the processes, whose logs are in it
  std::string dir_;
  int port_ = 0;
  std::vector<std::string> controller_prefix_;
  std::string controller_address_ = "127.0.0.1";
  std::unique_ptr<testing::ChildProcess> bertd_;
  std::map<std::string, std::unique_ptr<testing::ChildProcess>> agent_procs_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  int controller_starts_ = 0;
};

bool Finished(const v1::Job& job);
const v1::Stage* FindStage(const v1::Job& job, v1::StageKind kind);

}  // namespace bert::e2e
