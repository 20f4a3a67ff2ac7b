// A real `bertd --local-agent` on loopback and a `bertctl` that talks to it,
// as a user on one machine runs them: the fixture of the end-to-end tests
// that drive a job through the CLI. bertd runs in its own process group (the
// embedded agent and its workers go with it) with its data directory under
// the caller's directory, and is stopped with SIGTERM when destroyed.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bert::e2e {

// $BERT_BIN_DIR (where the four programs are built) and $BERT_SOURCE_DIR.
std::string BinDir();
std::string SourceDir();
std::string Slurp(const std::filesystem::path& path);
// Empty when bertd, bertctl, bert-agent and bert-worker are all built; else
// what is missing (for GTEST_SKIP).
std::string MissingPrograms();

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

class LocalBertd {
 public:
  // `dir` holds data/ (bertd's), bertd.log and the CLI's captured output.
  explicit LocalBertd(std::filesystem::path dir) : dir_(std::move(dir)) {}
  LocalBertd(const LocalBertd&) = delete;
  LocalBertd& operator=(const LocalBertd&) = delete;
  ~LocalBertd() { Stop(); }

  // Starts bertd with `extra_args` after the defaults; false (with the log in
  // `error`) when it did not write its port within 20 s.
  bool Start(const std::vector<std::string>& extra_args, std::string* error);
  void Stop();

  const std::string& server() const { return server_; }
  std::filesystem::path data_dir() const { return dir_ / "data"; }
  std::string Log() const { return Slurp(dir_ / "bertd.log"); }

  // Runs `bertctl ARGS --server ...` from `cwd` (default: the current one),
  // stdin from /dev/null, no BERTCTL_* variables; `env` is prefixed
  // ("XDG_CONFIG_HOME=/x").
  CliRun Bertctl(const std::string& args, const std::string& env = "") const;
  // Writes `yaml` to `spec_path` and submits it (`bertctl -o json submit
  // --upload never`); the job id, or "" with a test failure naming bertctl's error.
  std::string SubmitSpec(const std::filesystem::path& spec_path, const std::string& yaml) const;
  // Polls `bertctl get JOB -o json` until the job's state is one of `states`
  // (default: a final one) or `timeout_s` passes; the last JSON seen.
  nlohmann::json WaitForState(const std::string& job_id,
                              const std::vector<std::string>& states = {},
                              int timeout_s = 300) const;

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  std::string server_;
};

// The state of `kind`'s stage in a job's JSON ("" when absent).
std::string StageState(const nlohmann::json& job, const std::string& kind);

}  // namespace bert::e2e
