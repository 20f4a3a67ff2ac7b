// `bertd --local-agent`: runs one bert-agent child process (found beside bertd)
// that serves every pool, connected over loopback, and keeps it running:
// restarted with backoff when it exits, stopped (SIGTERM, then SIGKILL) on
// shutdown, and killed by the kernel if bertd itself dies. Its token reaches
// it by a file (mode 0600, in its work directory: --token-file), never on its
// command line, which any local user can read in /proc.
#pragma once

#include <sys/types.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace bert::server {

// The local agent's id; its token's subject must name it.
inline constexpr char kLocalAgentId[] = "local";

struct LocalAgentOptions {
  std::string agent_path;     // the bert-agent binary
  std::string server;         // "127.0.0.1:PORT"
  std::string work_dir;       // the agent's private directory
  std::string token;          // bearer token; empty when auth is off
  // Where the token is written for the child (mode 0600); default
  // work_dir/agent.token.
  std::string token_file;
  std::vector<std::string> extra_args;
  // The agent's --data-root directories: where job specs may point corpus
  // inputs. Empty: anywhere bertd's user can read (the agent warns).
  std::vector<std::string> data_roots;
  // Also each job's spec directory (bert-agent --spec-dir-root): the
  // single-user default, where whoever submits already owns the machine.
  bool spec_dir_root = false;
  absl::Duration stop_grace = absl::Seconds(10);
};

// Thread-safe.
class LocalAgent {
 public:
  // bert-agent in the directory of the running executable.
  static std::string DefaultAgentPath();
  static absl::StatusOr<std::unique_ptr<LocalAgent>> Start(LocalAgentOptions options);
  ~LocalAgent();

  // Stops the child and the supervisor; idempotent.
  void Stop();
  pid_t pid() const;
  int restarts() const;

 private:
  explicit LocalAgent(LocalAgentOptions options) : options_(std::move(options)) {}
  // Writes options_.token to options_.token_file, readable by this user only.
  absl::Status WriteTokenFile() const;
  absl::StatusOr<pid_t> Spawn();
  void Supervise();

  LocalAgentOptions options_;
  mutable absl::Mutex mu_;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int restarts_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread supervisor_;
};

}  // namespace bert::server
