// A program run as a child process by a test: its stdout and stderr appended
// to a log file, in a process group of its own (so stopping it stops what it
// started too), killed by the kernel if the test process dies. Not
// thread-safe: one thread owns a ChildProcess.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace bert::testing {

class ChildProcess {
 public:
  // Runs argv[0] (a path, no PATH lookup) with `argv`, output appended to
  // `log_path`. On failure (log not writable, fork or exec failed) started()
  // is false and error() says why.
  ChildProcess(const std::vector<std::string>& argv, std::string log_path);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Stop(), then SIGKILL to anything left in its process group.
  ~ChildProcess();

  bool started() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  // Stays valid after the process exited; -1 when it never started.
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // True while the process has not exited (reaps it once it has).
  bool Running();
  // Sends `sig` to the process alone (not its group); no-op once reaped.
  void Signal(int sig);
  // Waits up to `timeout`; the exit status as from waitpid once it exited,
  // nullopt while it still runs.
  std::optional<int> WaitFor(std::chrono::milliseconds timeout);
  // Waits for the exit; the status as from waitpid.
  int Wait();
  // SIGTERM to the process group, SIGKILL after `grace`; reaps it. Returns the
  // exit status (as from waitpid), or -1 when it never started.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // SIGKILL to the process group; reaps it.
  int Kill() { return Stop(std::chrono::milliseconds(0)); }

  // The last `bytes` of the log.
  std::string LogTail(size_t bytes = 3000) const;

 private:
  std::string log_path_;
  std::string error_;
  pid_t pid_ = -1;
  std::optional<int> status_;  // set once reaped
};

}  // namespace bert::testing
