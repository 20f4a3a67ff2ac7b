// bertctl logs -f against a real bertd that stops and starts again under it:
// the stream resumes after the last event seen, so every log line is printed
// exactly once; with no bertd to come back, it gives up after
// --reconnect-timeout with exit code 3. Skipped when bertd is not built.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bert::client {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}
std::string BinDir() { return Env("BERT_BIN_DIR", BERT_TEST_BIN_DIR); }
std::string TestData() {
  return Env("BERT_SOURCE_DIR", BERT_TEST_SOURCE_DIR) + "/tests/client/testdata";
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Polls `condition` every 50 ms for up to `seconds`.
bool WaitFor(const std::function<bool()>& condition, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

pid_t Spawn(std::vector<std::string> args, const fs::path& out, const fs::path& err) {
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "r", stdin);
    freopen(out.c_str(), "a", stdout);
    freopen(err.c_str(), "a", stderr);
    unsetenv("BERTCTL_TOKEN");
    unsetenv("BERTCTL_SERVER");
    setenv("XDG_CONFIG_HOME", (out.parent_path() / "no-config").c_str(), 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// The exit code of `pid` once it exits within `seconds`, else -1 (it is killed).
int WaitExit(pid_t pid, int seconds) {
  int status = 0;
  const bool exited = WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, seconds);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class ReconnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* binary : {"bertd", "bertctl", "bert-agent"}) {
      if (!fs::exists(BinDir() + "/" + binary)) GTEST_SKIP() << binary << " not built";
    }
    dir_ = fs::temp_directory_path() / ("bertctl_reconnect_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  void TearDown() override {
    StopBertd(SIGTERM);
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Starts bertd on `port` (0: any; the port is kept for restarts) over the
  // same data directory each time.
  void StartBertd(const std::vector<std::string>& extra) {
    const fs::path port_file = dir_ / "port";
    fs::remove(port_file);
    std::vector<std::string> args = {BinDir() + "/bertd", "--listen",
                                     "127.0.0.1:" + std::to_string(port_), "--data-dir",
                                     (dir_ / "data").string(), "--port-file", port_file.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    bertd_ = Spawn(args, dir_ / "bertd.log", dir_ / "bertd.log");
    ASSERT_TRUE(WaitFor([&] { return fs::exists(port_file) && !Slurp(port_file).empty(); }, 30))
        << Slurp(dir_ / "bertd.log");
    port_ = std::stoi(Slurp(port_file));
  }

  void StopBertd(int signal) {
    if (bertd_ <= 0) return;
    kill(bertd_, signal);
    int status = 0;
    waitpid(bertd_, &status, 0);
    bertd_ = -1;
  }

  std::string Server() const { return "127.0.0.1:" + std::to_string(port_); }

  // Runs bertctl to completion; its stdout.
  std::string Bertctl(const std::vector<std::string>& args, int* exit_code = nullptr) {
    std::vector<std::string> argv = {BinDir() + "/bertctl"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--server", Server()});
    fs::remove(dir_ / "out");
    const int code = WaitExit(Spawn(argv, dir_ / "out", dir_ / "err"), 60);
    if (exit_code != nullptr) *exit_code = code;
    return Slurp(dir_ / "out");
  }

  std::string Submit() {
    int code = -1;
    const std::string out =
        Bertctl({"-o", "json", "submit", "--upload", "never", TestData() + "/good.yaml"}, &code);
    EXPECT_EQ(code, 0) << Slurp(dir_ / "err");
    return nlohmann::json::parse(out)["job"]["id"];
  }

  fs::path dir_;
  pid_t bertd_ = -1;
  int port_ = 0;
};

TEST_F(ReconnectTest, LogsFollowSurvivesABertdRestartPrintingEveryLineOnce) {
  // No agent at first: the job waits, which bertd logs ("cannot be placed").
  StartBertd({});
  const std::string id = Submit();
  const fs::path out = dir_ / "follow.out";
  const fs::path err = dir_ / "follow.err";
  // -o wide puts each event's seq before the line.
  const pid_t follow = Spawn({BinDir() + "/bertctl", "logs", "-f", id, "-o", "wide",
                              "--reconnect-timeout", "120", "--server", Server()},
                             out, err);
  ASSERT_TRUE(WaitFor([&] { return Slurp(out).find("cannot be placed") != std::string::npos; }, 30))
      << Slurp(out) << Slurp(err);

  // bertd stops (its watch streams end) and comes back on the same port and
  // data directory, now with an agent: the job moves on and logs more.
  StopBertd(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return Slurp(err).find("lost the event stream") != std::string::npos; },
                      30))
      << Slurp(err);
  StartBertd({"--local-agent", "--agent-path", BinDir() + "/bert-agent"});
  ASSERT_TRUE(
      WaitFor([&] { return Slurp(out).find("started on agent") != std::string::npos; }, 120))
      << Slurp(out) << Slurp(err) << Slurp(dir_ / "bertd.log");
  int code = -1;
  Bertctl({"cancel", id}, &code);
  EXPECT_EQ(code, 0) << Slurp(dir_ / "err");
  // The stream ends with the job.
  EXPECT_EQ(WaitExit(follow, 60), 0) << Slurp(err);

  // What -f printed across the restart is the job's whole log, each line once.
  const std::vector<std::string> followed = Lines(Slurp(out));
  const std::vector<std::string> history = Lines(Bertctl({"logs", id, "-o", "wide"}, &code));
  EXPECT_EQ(code, 0);
  EXPECT_EQ(followed, history) << "followed:\n" << Slurp(out) << "stderr:\n" << Slurp(err);
  EXPECT_GE(followed.size(), 3u);
  const std::string stderr_text = Slurp(err);
  EXPECT_THAT(stderr_text, HasSubstr("lost the event stream of job " + id));
  EXPECT_THAT(stderr_text, HasSubstr("reconnecting in"));
}

TEST_F(ReconnectTest, GivesUpAfterTheReconnectTimeoutWithExitCode3) {
  StartBertd({});
  const std::string id = Submit();
  const fs::path out = dir_ / "follow.out";
  const fs::path err = dir_ / "follow.err";
  const pid_t follow = Spawn({BinDir() + "/bertctl", "logs", "-f", id, "--reconnect-timeout", "2",
                              "--server", Server()},
                             out, err);
  ASSERT_TRUE(WaitFor([&] { return Slurp(out).find("cannot be placed") != std::string::npos; }, 30))
      << Slurp(out) << Slurp(err);
  StopBertd(SIGKILL);  // and it never comes back
  EXPECT_EQ(WaitExit(follow, 60), 3) << Slurp(err);
  EXPECT_THAT(Slurp(err), HasSubstr("gave up reconnecting to the event stream of job " + id));
  // Each line is printed once before the stream broke.
  const std::vector<std::string> lines = Lines(Slurp(out));
  EXPECT_EQ(lines.size(), 1u) << Slurp(out);
}

}  // namespace
}  // namespace bert::client
