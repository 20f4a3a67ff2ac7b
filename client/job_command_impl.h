// The job commands' bodies, called by RegisterJobCommands (job_commands.cc).
// Each prints its result (text or JSON per GlobalCli()) and Fail()s with the
// exit code of commands.h. Internal to bertctl.
#pragma once

#include <string>
#include <vector>

namespace bert::client {

struct SpecFileOptions {
  std::string file;  // "-" = stdin
  bool check_paths = true;
  bool remote = false;  // validate: also ask bertd
};

// validate FILE: parses and checks the spec locally (no server needed).
void RunValidate(const SpecFileOptions& options);

struct SubmitOptions {
  SpecFileOptions spec;
  std::string idempotency_key;
  bool watch = false;
  bool plain = false;  // with watch: plain lines even on a terminal
};
// submit FILE: validates locally, then sends spec_yaml + base_dir.
void RunSubmit(const SubmitOptions& options);

struct ListOptions {
  std::vector<std::string> states;
  std::string name_prefix;
  std::vector<std::string> labels;  // "key=value"
  int page_size = 50;
  bool all = false;
};
void RunList(const ListOptions& options);
void RunGet(const std::string& job_id);
void RunCancel(const std::string& job_id, const std::string& reason);
void RunAgents(const std::string& pool);
void RunCheckpoints(const std::string& job_id);
void RunMetrics(const std::string& job_id, const std::vector<std::string>& names);

struct WatchCommandOptions {
  std::string job_id;
  bool follow = true;
  bool plain = false;  // plain lines even on a terminal
};
// Follows the job until it finishes; exit code 0 when it succeeded, 1 otherwise.
void RunWatch(const WatchCommandOptions& options);

struct LogsOptions {
  std::string job_id;
  bool follow = false;
  std::string stage;  // "" = all
};
void RunLogs(const LogsOptions& options);

}  // namespace bert::client
