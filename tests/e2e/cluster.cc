#include "tests/e2e/cluster.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"

namespace bert::e2e {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::unique_ptr<Process> Process::Start(const std::vector<std::string>& argv,
                                        const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (pid < 0) return nullptr;
  setpgid(pid, pid);
  return std::unique_ptr<Process>(new Process(pid, log_path));
}

Process::~Process() {
  if (!reaped_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  } else {
    kill(-pid_, SIGKILL);  // anything left in its group
  }
}

void Process::Signal(int sig) { kill(pid_, sig); }

bool Process::Running() {
  if (reaped_) return false;
  if (waitpid(pid_, nullptr, WNOHANG) == pid_) reaped_ = true;
  return !reaped_;
}

bool Process::WaitExit(milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

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

Cluster::Cluster(const std::string& name) {
  dir_ =
      (fs::temp_directory_path() / ("bert_e2e_" + name + "_" + std::to_string(getpid()))).string();
  fs::remove_all(dir_);
  fs::create_directories(dir_);
}

Cluster::~Cluster() {
  agent_procs_.clear();
  bertd_.reset();
  if (getenv("BERT_E2E_KEEP") == nullptr) fs::remove_all(dir_);
}

void Cluster::StartController(const std::vector<std::string>& extra) {
  const std::string port_file = dir_ + "/bertd.port";
  fs::remove(port_file);
  std::vector<std::string> argv = {BinDir() + "/bertd",
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port_),
                                   "--data-dir",
                                   dir_ + "/bertd",
                                   "--port-file",
                                   port_file,
                                   "--lease-ttl-ms",
                                   "2000",
                                   "--heartbeat-interval-ms",
                                   "250",
                                   "--restart-grace-ms",
                                   "20000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  bertd_ = Process::Start(argv, dir_ + "/bertd." + std::to_string(++controller_starts_) + ".log");
  for (int i = 0; i < 600; ++i) {
    if (auto text = ReadFile(port_file); text.ok() && !text->empty()) {
      port_ = std::atoi(text->c_str());
      break;
    }
    if (!bertd_->Running()) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  Connect();
}

void Cluster::KillController() {
  bertd_->Signal(SIGKILL);
  bertd_->WaitExit(milliseconds(5000));
}

void Cluster::Connect() {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials());
  jobs_ = v1::JobService::NewStub(channel);
  agents_ = v1::AgentService::NewStub(channel);
}

Process* Cluster::StartAgent(const std::string& id, const std::string& pools, bool shared_fs,
                             const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {BinDir() + "/bert-agent",
                                   "--server",
                                   "127.0.0.1:" + std::to_string(port_),
                                   "--pools",
                                   pools,
                                   "--work-dir",
                                   dir_ + "/agent-" + id,
                                   "--id",
                                   id,
                                   "--accelerator",
                                   "cpu",
                                   "--threads",
                                   "1",
                                   "--worker",
                                   BinDir() + "/bert-worker",
                                   "--cancel-grace-ms",
                                   "2000"};
  if (shared_fs) argv.push_back("--shared-fs");
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto& slot = agent_procs_[id];
  slot = Process::Start(argv, dir_ + "/agent-" + id + ".log");
  return slot.get();
}

void Cluster::KillAgent(const std::string& id) {
  auto it = agent_procs_.find(id);
  if (it == agent_procs_.end()) return;
  it->second->Signal(SIGKILL);
  it->second->WaitExit(milliseconds(5000));
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
