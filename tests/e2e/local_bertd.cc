#include "tests/e2e/local_bertd.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace bert::e2e {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}
}  // namespace

std::string BinDir() { return Env("BERT_BIN_DIR", ""); }
std::string SourceDir() { return Env("BERT_SOURCE_DIR", "."); }

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string MissingPrograms() {
  for (const char* binary : {"bertd", "bertctl", "bert-agent", "bert-worker"}) {
    if (BinDir().empty() || !fs::exists(BinDir() + "/" + binary)) {
      return std::string(binary) + " is not built in '" + BinDir() + "' (BERT_BIN_DIR)";
    }
  }
  return "";
}

bool LocalBertd::Start(const std::vector<std::string>& extra_args, std::string* error) {
  const fs::path port_file = dir_ / "port";
  fs::remove(port_file);
  fflush(stdout);
  fflush(stderr);
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    const std::string log = (dir_ / "bertd.log").string();
    if (freopen(log.c_str(), "a", stdout) == nullptr || freopen(log.c_str(), "a", stderr) == nullptr) {
      _exit(126);
    }
    std::vector<std::string> args = {BinDir() + "/bertd", "--listen",       "127.0.0.1:0",
                                     "--data-dir",        data_dir().string(), "--port-file",
                                     port_file.string(),  "--local-agent",  "--agent-path",
                                     BinDir() + "/bert-agent"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  for (int i = 0; i < 400 && !fs::exists(port_file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string port = fs::exists(port_file) ? Slurp(port_file) : "";
  if (port.empty()) {
    *error = "bertd did not start:\n" + Log();
    return false;
  }
  server_ = "127.0.0.1:" + std::to_string(std::stoi(port));
  return true;
}

void LocalBertd::Stop() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

CliRun LocalBertd::Bertctl(const std::string& args, const std::string& env) const {
  const std::string command =
      "env -u BERTCTL_TOKEN -u BERTCTL_SERVER -u BERTCTL_TOKEN_FILE -u BERTCTL_CONFIG " + env +
      " " + BinDir() + "/bertctl " + args + " --server " + server_ + " >" +
      (dir_ / "cli.out").string() + " 2>" + (dir_ / "cli.err").string() + " </dev/null";
  const int status = std::system(command.c_str());
  CliRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = Slurp(dir_ / "cli.out");
  run.err = Slurp(dir_ / "cli.err");
  return run;
}

std::string LocalBertd::SubmitSpec(const std::filesystem::path& spec_path, const std::string& yaml) const {
  std::ofstream(spec_path) << yaml;
  const CliRun run = Bertctl("-o json submit --upload never " + spec_path.string());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  if (run.exit_code != 0) return "";
  return json::parse(run.out)["job"]["id"];
}

json LocalBertd::WaitForState(const std::string& job_id, const std::vector<std::string>& states,
                              int timeout_s) const {
  const std::vector<std::string> wanted =
      states.empty() ? std::vector<std::string>{"SUCCEEDED", "FAILED", "CANCELLED"} : states;
  json job;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    const CliRun run = Bertctl("get " + job_id + " -o json");
    if (run.exit_code == 0) {
      job = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
      const std::string state = job.is_object() ? job.value("state", "") : "";
      for (const std::string& s : wanted) {
        if (state == s) return job;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return job;
}

std::string StageState(const json& job, const std::string& kind) {
  if (!job.is_object() || !job.contains("stages")) return "";
  for (const json& stage : job["stages"]) {
    if (stage.value("kind", "") == kind) return stage.value("state", "");
  }
  return "";
}

}  // namespace bert::e2e
