// The shared test helpers themselves: ChildProcess (log, exit status,
// signals, stopping a whole process group, exec failures), WaitForPortFile
// and TempDir, on /bin/sh scripts.
#include "tests/testing/child_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/port_file.h"
#include "tests/testing/temp_dir.h"

namespace bert::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

ChildProcess Shell(const TempDir& dir, const std::string& script) {
  return ChildProcess({"/bin/sh", "-c", script}, dir.File("child.log"));
}

// True while `pid` exists and is not a zombie (a reparented grandchild may
// wait a moment for its new parent to reap it).
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t state = line.rfind(')') + 2;  // "pid (comm) S ..."
  return state < line.size() && line[state] != 'Z';
}

TEST(ChildProcessTest, AppendsOutputToTheLogAndReportsTheExitStatus) {
  TempDir dir("child_process_test_");
  { std::ofstream(dir.File("child.log")) << "earlier\n"; }
  ChildProcess child({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, dir.File("child.log"));
  ASSERT_TRUE(child.started()) << child.error();
  const std::optional<int> status = child.WaitFor(seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_FALSE(child.Running());
  EXPECT_EQ(child.Wait(), *status);  // reaped once, remembered
  EXPECT_EQ(child.LogTail(), "earlier\nout\nerr\n");
  EXPECT_EQ(child.LogTail(4), "err\n");
}

TEST(ChildProcessTest, SignalReachesTheProcessAndWaitForTimesOutWhileItRuns) {
  TempDir dir("child_process_test_");
  ChildProcess child({"/bin/sleep", "30"}, dir.File("child.log"));
  ASSERT_TRUE(child.started()) << child.error();
  EXPECT_TRUE(child.Running());
  EXPECT_FALSE(child.WaitFor(milliseconds(100)).has_value());
  child.Signal(SIGKILL);
  const std::optional<int> status = child.WaitFor(seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
}

TEST(ChildProcessTest, StopEndsTheWholeProcessGroupIncludingGrandchildren) {
  TempDir dir("child_process_test_");
  // The shell ignores SIGTERM, so Stop must fall back to SIGKILL; its
  // background sleep must go too.
  ChildProcess child =
      Shell(dir, "trap '' TERM; sleep 30 & echo $! > " + dir.File("grandchild") + "; wait");
  ASSERT_TRUE(child.started()) << child.error();
  pid_t grandchild = 0;
  for (int i = 0; i < 200 && grandchild == 0; ++i) {
    std::ifstream(dir.File("grandchild")) >> grandchild;
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_GT(grandchild, 0);
  ASSERT_TRUE(Alive(grandchild));
  const auto start = std::chrono::steady_clock::now();
  const int status = child.Stop(milliseconds(300));
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_FALSE(child.Running());
  // The grandchild is reparented and reaped by init; wait until it is gone.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !Alive(grandchild);
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(gone) << "pid " << grandchild << " outlived Stop()";
}

TEST(ChildProcessTest, StopLetsAProcessExitOnSigterm) {
  TempDir dir("child_process_test_");
  ChildProcess child = Shell(dir, "trap 'exit 7' TERM; while :; do sleep 0.05; done");
  ASSERT_TRUE(child.started()) << child.error();
  std::this_thread::sleep_for(milliseconds(200));  // the trap is installed
  const int status = child.Stop(seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << status;
}

TEST(ChildProcessTest, DestructorStopsTheProcess) {
  TempDir dir("child_process_test_");
  pid_t pid = 0;
  {
    ChildProcess child({"/bin/sleep", "30"}, dir.File("child.log"));
    ASSERT_TRUE(child.started()) << child.error();
    pid = child.pid();
    ASSERT_TRUE(Alive(pid));
  }
  EXPECT_FALSE(Alive(pid));  // reaped, so not even a zombie
}

TEST(ChildProcessTest, ExecAndLogFailuresAreReportedNotHidden) {
  TempDir dir("child_process_test_");
  ChildProcess missing({dir.File("no-such-program")}, dir.File("child.log"));
  EXPECT_FALSE(missing.started());
  EXPECT_FALSE(missing.Running());
  EXPECT_NE(missing.error().find("no-such-program"), std::string::npos) << missing.error();
  EXPECT_NE(missing.error().find("No such file"), std::string::npos) << missing.error();

  ChildProcess unwritable({"/bin/true"}, dir.File("no-such-dir/child.log"));
  EXPECT_FALSE(unwritable.started());
  EXPECT_NE(unwritable.error().find("no-such-dir/child.log"), std::string::npos)
      << unwritable.error();

  ChildProcess empty({}, dir.File("child.log"));
  EXPECT_FALSE(empty.started());
  EXPECT_EQ(empty.Stop(), -1);
}

TEST(WaitForPortFileTest, ReturnsThePortOnceWrittenAndGivesUpWhenTheServerExits) {
  TempDir dir("child_process_test_");
  const std::string port_file = dir.File("port");
  ChildProcess writer = Shell(dir, "sleep 0.2; echo 4321 > " + port_file + ".tmp; mv " + port_file +
                                       ".tmp " + port_file + "; exec sleep 30");
  ASSERT_TRUE(writer.started()) << writer.error();
  EXPECT_EQ(WaitForPortFile(port_file, writer, seconds(10)), std::optional<int>(4321));

  ChildProcess quitter = Shell(dir, "exit 1");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(WaitForPortFile(dir.File("never"), quitter, seconds(10)), std::nullopt);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));

  ChildProcess sleeper = Shell(dir, "exec sleep 30");
  EXPECT_EQ(WaitForPortFile(dir.File("never"), sleeper, milliseconds(200)), std::nullopt);
}

TEST(TempDirTest, IsFreshPerInstanceAndRemovedWithItsContents) {
  fs::path kept;
  {
    TempDir a("temp_dir_test_");
    TempDir b("temp_dir_test_");
    EXPECT_NE(a.path(), b.path());
    EXPECT_TRUE(fs::is_directory(a.path()));
    EXPECT_TRUE(fs::is_empty(a.path()));
    EXPECT_EQ(a.path().filename().string().rfind("temp_dir_test_", 0), 0u);
    fs::create_directories(a.path() / "sub");
    std::ofstream(a.File("sub/file")) << "x";
    kept = a.path();
  }
  EXPECT_FALSE(fs::exists(kept));
}

}  // namespace
}  // namespace bert::testing
