// RunWorker against real child processes: small shell scripts that speak the
// worker protocol (docs/worker-protocol.md), crash, ignore SIGTERM or fork.
#include "agent/worker_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "agent/failure.h"

namespace bert::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class RecordingReporter : public StageReporter {
 public:
  void Progress(int64_t done, int64_t total, std::string_view unit) override {
    std::lock_guard l(mu);
    progress.push_back({done, total});
  }
  void Metric(std::string_view name, double value, int64_t step) override {
    std::lock_guard l(mu);
    metrics.push_back(std::string(name) + "=" + std::to_string(value) + "@" + std::to_string(step));
  }
  void Log(std::string_view level, std::string_view message) override {
    std::lock_guard l(mu);
    logs.push_back(std::string(level) + ":" + std::string(message));
  }
  bool Cancelled() const override { return cancelled; }
  bool PauseRequested() const override { return paused; }
  void Checkpoint(const v1::CheckpointRecord& record) override {
    std::lock_guard l(mu);
    checkpoints.push_back(record);
  }
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> progress;
  std::vector<std::string> metrics, logs;
  std::vector<v1::CheckpointRecord> checkpoints;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> paused{false};
};

bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) return false;
  return state != "Z" && state != "X";
}

WorkerOptions Options(const std::string& program, milliseconds grace = milliseconds(10000)) {
  WorkerOptions o;
  o.argv = {program};
  o.cancel_grace = grace;
  return o;
}

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("bert_worker_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Script(const std::string& body) {
    const std::string path = (dir_ / "worker.sh").string();
    std::ofstream(path) << "#!/bin/sh\n" << body;
    fs::permissions(path, fs::perms::owner_all);
    return path;
  }

  fs::path dir_;
};

TEST_F(WorkerProcessTest, ForwardsReportsAndSucceeds) {
  const std::string w = Script(R"(
echo '{"type":"progress","done":1,"total":2,"unit":"steps"}'
echo '{"type":"metric","name":"train/loss","value":2.5,"step":1}'
echo '{"type":"log","level":"warning","message":"hello"}'
echo 'libtorch noise' >&2
echo '{"type":"checkpoint","step":2,"path":"/x/checkpoint-2","size_bytes":10,"sha256":"ab"}'
echo '{"type":"result","ok":true}'
)");
  RecordingReporter r;
  ASSERT_TRUE(RunWorker(Options(w), r).ok());
  ASSERT_EQ(r.progress.size(), 1u);
  EXPECT_EQ(r.progress[0].first, 1);
  EXPECT_EQ(r.progress[0].second, 2);
  ASSERT_EQ(r.metrics.size(), 1u);
  EXPECT_EQ(r.metrics[0], "train/loss=2.500000@1");
  EXPECT_NE(std::find(r.logs.begin(), r.logs.end(), "warning:hello"), r.logs.end());
  EXPECT_NE(std::find(r.logs.begin(), r.logs.end(), "info:libtorch noise"), r.logs.end());
  ASSERT_EQ(r.checkpoints.size(), 1u);
  EXPECT_EQ(r.checkpoints[0].step(), 2);
  EXPECT_EQ(r.checkpoints[0].artifact().name(), "checkpoint-2");
  EXPECT_EQ(r.checkpoints[0].artifact().uri(), "file:///x/checkpoint-2");
}

TEST_F(WorkerProcessTest, FailedResultCarriesItsCause) {
  const std::string w = Script(
      "echo '{\"type\":\"result\",\"ok\":false,\"failure_cause\":\"DATA_ERROR\",\"message\":\"bad "
      "shard\"}'\nexit 1\n");
  RecordingReporter r;
  absl::Status s = RunWorker(Options(w), r);
  EXPECT_EQ(CauseOf(s), v1::DATA_ERROR);
  EXPECT_EQ(s.message(), "bad shard");
}

TEST_F(WorkerProcessTest, CrashIsWorkerCrashedWithStderrTail) {
  const std::string w = Script("echo 'segfault in foo' >&2\nexit 3\n");
  RecordingReporter r;
  absl::Status s = RunWorker(Options(w), r);
  EXPECT_EQ(CauseOf(s), v1::WORKER_CRASHED);
  EXPECT_NE(s.message().find("status 3"), std::string::npos);
  EXPECT_NE(s.message().find("segfault in foo"), std::string::npos);
}

TEST_F(WorkerProcessTest, KilledBySigkillIsOutOfMemory) {
  const std::string w = Script("kill -9 $$\n");
  RecordingReporter r;
  EXPECT_EQ(CauseOf(RunWorker(Options(w), r)), v1::OUT_OF_MEMORY);
}

TEST_F(WorkerProcessTest, MissingBinaryIsAnError) {
  RecordingReporter r;
  absl::Status s = RunWorker(Options((dir_ / "nope").string()), r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nope"), std::string::npos);
}

TEST_F(WorkerProcessTest, CancelStopsWorkerAndItsChildrenWithinGrace) {
  // The worker ignores SIGTERM and has a grandchild: both must die.
  const std::string pidfile = (dir_ / "grandchild.pid").string();
  const std::string w = Script("trap '' TERM\nsleep 300 &\necho $! > " + pidfile +
                               "\necho '{\"type\":\"progress\",\"done\":0,\"total\":1}'\nwait\n");
  RecordingReporter r;
  std::thread canceller([&] {
    while (true) {
      {
        std::lock_guard l(r.mu);
        if (!r.progress.empty()) break;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    r.cancelled = true;
  });
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = RunWorker(Options(w, milliseconds(500)), r);
  const auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_EQ(CauseOf(s), v1::CANCELLED_BY_USER);
  EXPECT_LT(took, std::chrono::seconds(5));
  std::ifstream in(pidfile);
  pid_t grandchild = 0;
  in >> grandchild;
  ASSERT_GT(grandchild, 0);
  // Give the kernel a moment to deliver SIGKILL to the group. A zombie (not
  // yet reaped by init) counts as dead.
  for (int i = 0; i < 50 && Alive(grandchild); ++i) std::this_thread::sleep_for(milliseconds(20));
  EXPECT_FALSE(Alive(grandchild)) << "grandchild " << grandchild << " survived the cancel";
}

// A pause: once the worker spoke (its handlers are installed), it gets
// SIGUSR1 alone (not SIGTERM), reports its checkpoint and ends PAUSED_BY_USER.
TEST_F(WorkerProcessTest, APauseSendsSigusrOneAndEndsPausedWithTheCheckpoint) {
  const std::string w = Script(
      "trap 'echo \"{\\\"type\\\":\\\"checkpoint\\\",\\\"step\\\":7,\\\"path\\\":\\\"/x/checkpoint-7\\\","
      "\\\"size_bytes\\\":1,\\\"sha256\\\":\\\"ab\\\"}\"; echo \"{\\\"type\\\":\\\"result\\\",\\\"ok\\\":false,"
      "\\\"failure_cause\\\":\\\"PAUSED_BY_USER\\\",\\\"message\\\":\\\"paused at step 7\\\"}\"; exit 138' USR1\n"
      "trap 'exit 143' TERM\n"
      "echo '{\"type\":\"progress\",\"done\":1,\"total\":9,\"unit\":\"steps\"}'\n"
      "while true; do sleep 0.05; done\n");
  RecordingReporter r;
  r.paused = true;  // asked before the worker started: sent once it spoke
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = RunWorker(Options(w), r);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(CauseOf(s), v1::PAUSED_BY_USER) << s;
  EXPECT_EQ(s.message(), "paused at step 7");
  ASSERT_EQ(r.checkpoints.size(), 1u);
  EXPECT_EQ(r.checkpoints[0].step(), 7);
}

TEST_F(WorkerProcessTest, ExitZeroWithoutResultIsSuccess) {
  const std::string w = Script("echo 'not json'\nexit 0\n");
  RecordingReporter r;
  EXPECT_TRUE(RunWorker(Options(w), r).ok());
  EXPECT_NE(std::find(r.logs.begin(), r.logs.end(), "info:not json"), r.logs.end());
}

}  // namespace
}  // namespace bert::agent
