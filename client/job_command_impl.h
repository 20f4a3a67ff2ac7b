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
  // --upload auto|always|never: corpus files the cluster cannot see are
  // uploaded first (input_uploader.h).
  std::string upload = "auto";
  // --pull DIR: with watch, pull the model to DIR when the job succeeds;
  // default (empty): the spec's output.dir, unless it lies under bertd's
  // shared output root (the export agent wrote it there). "-": no pull.
  std::string pull;
};
// submit FILE: validates locally, uploads what the cluster cannot see, then
// sends spec_yaml + base_dir + input_files.
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

// watch, logs -f, submit --watch: a stream that breaks (bertd restarted, a
// network blip) is resumed after the last event seen; after this many
// seconds of failed tries the command gives up with exit code 3.
inline constexpr int kDefaultReconnectTimeoutS = 300;

struct WatchCommandOptions {
  std::string job_id;
  bool follow = true;
  bool plain = false;  // plain lines even on a terminal
  // --reconnect-timeout: how long a broken stream is retried before exit 3.
  int reconnect_timeout_s = kDefaultReconnectTimeoutS;
};
// Follows the job until it finishes; exit code 0 when it succeeded, 1 otherwise.
void RunWatch(const WatchCommandOptions& options);

struct LogsOptions {
  std::string job_id;
  bool follow = false;
  std::string stage;  // "" = all
  int reconnect_timeout_s = kDefaultReconnectTimeoutS;  // as for watch
};
void RunLogs(const LogsOptions& options);

}  // namespace bert::client
