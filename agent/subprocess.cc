#include "agent/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"

extern char** environ;

namespace bert::agent {
namespace {

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(const SubprocessOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("subprocess: empty argv");
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (const std::string& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const std::string& e : options.extra_env) env_storage.push_back(e);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, exec_pipe[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {out_pipe, err_pipe, exec_pipe}) {
      CloseFd(p[0]);
      CloseFd(p[1]);
    }
  };
  if ((options.pipe_stdout && pipe2(out_pipe, O_CLOEXEC) != 0) ||
      (options.pipe_stderr && pipe2(err_pipe, O_CLOEXEC) != 0) ||
      pipe2(exec_pipe, O_CLOEXEC) != 0) {
    int err = errno;
    close_all();
    return PosixError("pipe", options.argv[0], err);
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close_all();
    return PosixError("fork", options.argv[0], err);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (out_pipe[1] >= 0) dup2(out_pipe[1], STDOUT_FILENO);
    if (err_pipe[1] >= 0) dup2(err_pipe[1], STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    int err = errno;
    ssize_t ignored = write(exec_pipe[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  setpgid(pid, pid);  // also done by the child; whichever runs first wins the race
  CloseFd(out_pipe[1]);
  CloseFd(err_pipe[1]);
  CloseFd(exec_pipe[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(exec_pipe[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  CloseFd(exec_pipe[0]);
  if (n == sizeof(exec_errno)) {
    waitpid(pid, nullptr, 0);
    CloseFd(out_pipe[0]);
    CloseFd(err_pipe[0]);
    return PosixError("exec", options.argv[0], exec_errno);
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, out_pipe[0], err_pipe[0]));
}

Subprocess::~Subprocess() {
  CloseStdout();
  CloseStderr();
  if (!wait_status_) {
    SignalGroup(SIGKILL);
    Wait();
  }
}

void Subprocess::CloseStdout() { CloseFd(stdout_fd_); }
void Subprocess::CloseStderr() { CloseFd(stderr_fd_); }

void Subprocess::SignalGroup(int signal) {
  if (wait_status_) {
    // The leader is reaped; members of its group may still live.
    kill(-pid_, signal);
    return;
  }
  if (kill(-pid_, signal) != 0) kill(pid_, signal);
}

std::optional<int> Subprocess::TryWait() {
  if (wait_status_) return wait_status_;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) wait_status_ = status;
  return wait_status_;
}

int Subprocess::Wait() {
  while (!wait_status_) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, 0);
    if (r == pid_) {
      wait_status_ = status;
    } else if (r < 0 && errno != EINTR) {
      wait_status_ = 0;  // not our child any more (ECHILD): nothing to reap
    }
  }
  return *wait_status_;
}

absl::StatusOr<std::string> RunCommandForOutput(const std::vector<std::string>& argv,
                                                int timeout_ms) {
  SubprocessOptions options;
  options.argv = argv;
  options.pipe_stderr = false;
  auto child_or = Subprocess::Start(options);
  if (!child_or.ok()) return child_or.status();
  std::unique_ptr<Subprocess> child = std::move(*child_or);
  std::string output;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (child->stdout_fd() >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      child->SignalGroup(SIGKILL);
      child->Wait();
      return absl::DeadlineExceededError(
          absl::StrCat(argv[0], ": no answer within ", timeout_ms, " ms"));
    }
    pollfd pfd{child->stdout_fd(), POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left));
    if (r <= 0) continue;
    ssize_t n = read(child->stdout_fd(), buf, sizeof(buf));
    if (n > 0) {
      output.append(buf, n);
    } else if (n == 0 || errno != EINTR) {
      child->CloseStdout();
    }
  }
  int status = child->Wait();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat(argv[0], " exited abnormally (wait status ", status, ")"));
  }
  return output;
}

}  // namespace bert::agent
