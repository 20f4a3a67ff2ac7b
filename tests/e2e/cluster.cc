#include "tests/e2e/cluster.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "tests/testing/port_file.h"

namespace bert::e2e {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::string Cluster::BinDir() {
  const char* d = getenv("BERT_BIN_DIR");
  return d ? d : "";
}

std::string Cluster::SourceDir() {
  const char* d = getenv("BERT_SOURCE_DIR");
  return d ? d : "";
}

std::string Cluster::Missing(const std::vector<std::string>& binaries) {
  std::string missing;
  if (BinDir().empty()) return "BERT_BIN_DIR is not set";
  for (const std::string& b : binaries) {
    if (access((BinDir() + "/" + b).c_str(), X_OK) != 0) missing += " " + b;
  }
  return missing.empty() ? "" : "missing in $BERT_BIN_DIR:" + missing;
}

Cluster::Cluster(const std::string& name)
    : temp_dir_("bert_e2e_" + name + "_"), dir_(temp_dir_.path().string()) {}

Cluster::~Cluster() {
  for (auto& [id, agent] : agent_procs_) agent->Kill();
  if (bertd_ != nullptr) bertd_->Kill();
}

void Cluster::PlaceController(std::vector<std::string> prefix, std::string address) {
  controller_prefix_ = std::move(prefix);
  controller_address_ = std::move(address);
}

std::string Cluster::ControllerTarget() const {
  return controller_address_ + ":" + std::to_string(port_);
}

void Cluster::StartController(const std::vector<std::string>& extra) {
  const std::string port_file = dir_ + "/bertd.port";
  fs::remove(port_file);
  std::vector<std::string> argv = controller_prefix_;
  argv.insert(argv.end(), {BinDir() + "/bertd", "--listen", ControllerTarget(), "--data-dir",
                           dir_ + "/bertd", "--port-file", port_file, "--lease-ttl-ms", "2000",
                           "--heartbeat-interval-ms", "250", "--restart-grace-ms", "20000"});
  if (controller_address_.rfind("127.", 0) != 0) argv.push_back("--allow-insecure");
  argv.insert(argv.end(), extra.begin(), extra.end());
  bertd_ = std::make_unique<testing::ChildProcess>(
      argv, dir_ + "/bertd." + std::to_string(++controller_starts_) + ".log");
  // When bertd does not come up, the calls that follow fail and the test
  // shows the logs.
  if (std::optional<int> port = testing::WaitForPortFile(port_file, *bertd_, milliseconds(30000))) {
    port_ = *port;
  }
  Connect();
}

void Cluster::KillController() {
  bertd_->Signal(SIGKILL);
  bertd_->WaitFor(milliseconds(5000));
}

void Cluster::Connect() {
  auto channel = grpc::CreateChannel(ControllerTarget(), grpc::InsecureChannelCredentials());
  jobs_ = v1::JobService::NewStub(channel);
  agents_ = v1::AgentService::NewStub(channel);
}

testing::ChildProcess* Cluster::StartAgent(const std::string& id, const std::string& pools,
                                           bool shared_fs, const std::vector<std::string>& extra) {
  return StartAgentOn({}, dir_ + "/agent-" + id, id, pools, shared_fs, extra);
}

testing::ChildProcess* Cluster::StartAgentOn(const std::vector<std::string>& prefix,
                                             const std::string& work_dir, const std::string& id,
                                             const std::string& pools, bool shared_fs,
                                             const std::vector<std::string>& extra) {
  std::vector<std::string> argv = prefix;
  argv.insert(argv.end(), {BinDir() + "/bert-agent", "--server", ControllerTarget(), "--pools",
                           pools, "--work-dir", work_dir, "--id", id, "--accelerator", "cpu",
                           "--threads", "1", "--worker", BinDir() + "/bert-worker",
                           "--cancel-grace-ms", "2000"});
  if (shared_fs) argv.push_back("--shared-fs");
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto& slot = agent_procs_[id];
  slot = std::make_unique<testing::ChildProcess>(argv, dir_ + "/agent-" + id + ".log");
  return slot.get();
}

void Cluster::KillAgent(const std::string& id) {
  auto it = agent_procs_.find(id);
  if (it == agent_procs_.end()) return;
  it->second->Signal(SIGKILL);
  it->second->WaitFor(milliseconds(5000));
}

std::string Cluster::Submit(const std::string& yaml, const std::string& base_dir) {
  v1::SubmitJobRequest request;
  request.set_spec_yaml(yaml);
  request.set_base_dir(base_dir);
  v1::SubmitJobResponse response;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = jobs_->SubmitJob(&context, request, &response);
    if (s.ok()) return response.job().id();
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return "error: " + s.error_message();
    std::this_thread::sleep_for(milliseconds(100));
  }
  return "error: controller unavailable";
}

v1::Job Cluster::GetJob(const std::string& id) {
  v1::GetJobRequest request;
  request.set_job_id(id);
  v1::Job job;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!jobs_->GetJob(&context, request, &job).ok()) job.Clear();
  return job;
}

v1::Job Cluster::WaitFor(const std::string& id, const std::function<bool(const v1::Job&)>& pred,
                         std::chrono::seconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  v1::Job job;
  while (std::chrono::steady_clock::now() < until) {
    job = GetJob(id);
    if (!job.id().empty() && pred(job)) return job;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return job;
}

std::vector<v1::Event> Cluster::Events(const std::string& id) {
  v1::WatchJobRequest request;
  request.set_job_id(id);
  request.set_follow(false);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = jobs_->WatchJob(&context, request);
  std::vector<v1::Event> events;
  v1::Event e;
  while (reader->Read(&e)) events.push_back(e);
  reader->Finish();
  return events;
}

std::string Cluster::Logs() const {
  std::ostringstream out;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().extension() != ".log") continue;
    auto text = ReadFile(entry.path().string());
    if (!text.ok()) continue;
    const size_t keep = 3000;
    out << "==== " << entry.path().filename().string() << "\n"
        << (text->size() > keep ? text->substr(text->size() - keep) : *text) << "\n";
  }
  return out.str();
}

bool Finished(const v1::Job& job) {
  return job.state() == v1::SUCCEEDED || job.state() == v1::FAILED || job.state() == v1::CANCELLED;
}

const v1::Stage* FindStage(const v1::Job& job, v1::StageKind kind) {
  for (const v1::Stage& s : job.stages()) {
    if (s.kind() == kind) return &s;
  }
  return nullptr;
}

}  // namespace bert::e2e
