#include "tests/testing/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace bert::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string ErrnoText(const std::string& what, int err) { return what + ": " + std::strerror(err); }

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, std::string log_path)
    : log_path_(std::move(log_path)) {
  if (argv.empty()) {
    error_ = "no program to run (empty argv)";
    return;
  }
  // Everything the child needs is prepared here: after fork() in a threaded
  // process only async-signal-safe calls are allowed.
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    error_ = ErrnoText("open log " + log_path_, errno);
    return;
  }
  int exec_error[2];  // the child writes errno here when execv fails
  if (::pipe2(exec_error, O_CLOEXEC) != 0) {
    error_ = ErrnoText("pipe2", errno);
    ::close(log_fd);
    return;
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test
    if (::getppid() != parent) ::_exit(127);
    ::setpgid(0, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    const int err = errno;
    (void)!::write(exec_error[1], &err, sizeof err);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(log_fd);
  ::close(exec_error[1]);
  if (pid < 0) {
    ::close(exec_error[0]);
    error_ = ErrnoText("fork", fork_errno);
    return;
  }
  ::setpgid(pid, pid);  // also here, so that the group exists before we return
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_error[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(exec_error[0]);
  if (n > 0) {
    ::waitpid(pid, nullptr, 0);
    error_ = ErrnoText("execv " + argv[0], child_errno);
    return;
  }
  pid_ = pid;
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::Running() {
  if (pid_ <= 0 || status_.has_value()) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = status;
    return false;
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0 && !status_.has_value()) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::WaitFor(milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (Running()) {
    if (steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return status_;
}

int ChildProcess::Wait() {
  if (pid_ <= 0) return -1;
  if (!status_.has_value()) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = status;
  }
  return *status_;
}

int ChildProcess::Stop(milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (Running() && grace > milliseconds(0)) {
    ::kill(-pid_, SIGTERM);
    WaitFor(grace);
  }
  ::kill(-pid_, SIGKILL);  // it, if still running, and leftovers in its group
  return Wait();
}

std::string ChildProcess::LogTail(size_t bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string log = buffer.str();
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

}  // namespace bert::testing
