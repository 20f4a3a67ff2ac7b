#include "server/local_agent.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"

namespace bert::server {

std::string LocalAgent::DefaultAgentPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "bert-agent";
  return (self.parent_path() / "bert-agent").string();
}

absl::StatusOr<std::unique_ptr<LocalAgent>> LocalAgent::Start(LocalAgentOptions options) {
  if (::access(options.agent_path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("--local-agent: no executable bert-agent at ",
                                            options.agent_path));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  if (options.token_file.empty()) options.token_file = options.work_dir + "/agent.token";
  std::unique_ptr<LocalAgent> agent(new LocalAgent(std::move(options)));
  if (!agent->options_.token.empty()) {
    if (absl::Status written = agent->WriteTokenFile(); !written.ok()) return written;
  }
  auto pid = agent->Spawn();
  if (!pid.ok()) return pid.status();
  {
    absl::MutexLock lock(&agent->mu_);
    agent->pid_ = *pid;
  }
  agent->supervisor_ = std::thread([raw = agent.get()] { raw->Supervise(); });
  return agent;
}

absl::Status LocalAgent::WriteTokenFile() const {
  const std::string& path = options_.token_file;
  const std::string temp = path + ".tmp";
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return PosixError("create", temp, errno);
  const std::string text = options_.token + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return PosixError("write", temp, err);
  if (::rename(temp.c_str(), path.c_str()) != 0) return PosixError("rename", path, errno);
  return absl::OkStatus();
}

absl::StatusOr<pid_t> LocalAgent::Spawn() {
  std::vector<std::string> args = {options_.agent_path, "--server", options_.server,
                                   "--pools", "*", "--work-dir", options_.work_dir,
                                   "--id", kLocalAgentId, "--shared-fs"};
  if (!options_.token.empty()) {
    args.push_back("--token-file");
    args.push_back(options_.token_file);
  }
  for (const std::string& root : options_.data_roots) {
    args.push_back("--data-root");
    args.push_back(root);
  }
  if (options_.spec_dir_root) args.push_back("--spec-dir-root");
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return PosixError("fork", options_.agent_path, errno);
  if (pid == 0) {
    // The agent must not outlive bertd: a restarted bertd starts a fresh one.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

void LocalAgent::Supervise() {
  absl::Duration backoff = absl::Seconds(1);
  for (;;) {
    pid_t pid;
    {
      absl::MutexLock lock(&mu_);
      pid = pid_;
    }
    int status = 0;
    if (pid > 0) {
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    std::cerr << "bertd: local agent (pid " << pid << ") exited with status " << status
              << "; restarting in " << absl::FormatDuration(backoff) << std::endl;
    const absl::Time until = absl::Now() + backoff;
    mu_.AwaitWithDeadline(absl::Condition(&stopping_), until);
    if (stopping_) return;
    backoff = std::min(backoff * 2, absl::Seconds(30));
    auto next = Spawn();
    pid_ = next.ok() ? *next : -1;
    ++restarts_;
    if (!next.ok()) std::cerr << "bertd: cannot restart the local agent: " << next.status() << std::endl;
  }
}

void LocalAgent::Stop() {
  pid_t pid;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      pid = -1;
    } else {
      stopping_ = true;
      pid = pid_;
    }
  }
  if (pid > 0) {
    ::kill(pid, SIGTERM);
    const absl::Time deadline = absl::Now() + options_.stop_grace;
    // The supervisor reaps it; wait for the process to disappear, then force it.
    while (absl::Now() < deadline && ::kill(pid, 0) == 0) {
      int status;
      if (::waitpid(pid, &status, WNOHANG) == pid) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ::kill(pid, SIGKILL);
  }
  if (supervisor_.joinable()) supervisor_.join();
}

pid_t LocalAgent::pid() const {
  absl::MutexLock lock(&mu_);
  return pid_;
}

int LocalAgent::restarts() const {
  absl::MutexLock lock(&mu_);
  return restarts_;
}

LocalAgent::~LocalAgent() { Stop(); }

}  // namespace bert::server
