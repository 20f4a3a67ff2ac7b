// A child process in its own process group, with its stdout and stderr piped
// back, that dies with the thread that started it (PR_SET_PDEATHSIG), so a
// killed agent never leaves a worker behind holding a device.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace bert::agent {

struct SubprocessOptions {
  std::vector<std::string> argv;       // argv[0] is the program's path
  std::vector<std::string> extra_env;  // "NAME=value", added to the agent's environment
  bool pipe_stdout = true;
  bool pipe_stderr = true;
};

// Owns the child: destroying a Subprocess that still runs kills its process
// group (SIGKILL) and reaps it. Not thread-safe; the thread that starts it
// must outlive it (the child gets SIGKILL when that thread exits).
class Subprocess {
 public:
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const SubprocessOptions& options);
  ~Subprocess();

  pid_t pid() const { return pid_; }
  int stdout_fd() const { return stdout_fd_; }  // -1 when not piped or closed
  int stderr_fd() const { return stderr_fd_; }
  void CloseStdout();
  void CloseStderr();

  // Sends `signal` to the child's whole process group.
  void SignalGroup(int signal);
  // Reaps the child if it has exited; returns its wait status.
  std::optional<int> TryWait();
  // Blocks until the child exits; returns its wait status.
  int Wait();

 private:
  Subprocess(pid_t pid, int stdout_fd, int stderr_fd)
      : pid_(pid), stdout_fd_(stdout_fd), stderr_fd_(stderr_fd) {}

  pid_t pid_;
  int stdout_fd_;
  int stderr_fd_;
  std::optional<int> wait_status_;
};

// Runs a command to completion with a time limit and returns its stdout; an
// error when it cannot start, times out or exits non-zero.
absl::StatusOr<std::string> RunCommandForOutput(const std::vector<std::string>& argv,
                                                int timeout_ms);

}  // namespace bert::agent
