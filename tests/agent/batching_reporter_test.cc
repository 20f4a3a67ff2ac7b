#include "agent/batching_reporter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace bert::agent {
namespace {

using std::chrono::milliseconds;

// A controller stand-in: records what arrives; can be "down".
struct FakeSink {
  std::mutex mu;
  std::vector<v1::StageReport> received;
  std::atomic<int> calls{0};
  std::atomic<bool> down{false};
  std::atomic<bool> stale{false};
  std::atomic<bool> cancel{false};

  BatchingReporter::SendFn Fn() {
    return [this](std::vector<v1::StageReport> batch) -> absl::StatusOr<bool> {
      ++calls;
      if (down) return absl::UnavailableError("controller restarting");
      if (stale) return absl::FailedPreconditionError("stale attempt");
      std::lock_guard l(mu);
      for (auto& r : batch) received.push_back(std::move(r));
      return cancel.load();
    };
  }
  std::vector<v1::StageReport> Received() {
    std::lock_guard l(mu);
    return received;
  }
};

TEST(BatchingReporterTest, CoalescesProgressAndKeepsMetricOrder) {
  FakeSink sink;
  BatchingReporter r(v1::PRETRAIN, sink.Fn(), milliseconds(200));
  for (int i = 1; i <= 100; ++i) r.Progress(i, 100, "steps");
  for (int i = 0; i < 5; ++i) r.Metric("train/loss", 10 - i, i);
  r.Finish();
  int progress = 0;
  std::vector<int64_t> steps;
  int64_t last_done = 0;
  for (const auto& rep : sink.Received()) {
    if (rep.has_progress()) {
      ++progress;
      last_done = rep.progress().done();
    }
    if (rep.has_metric()) {
      steps.push_back(rep.metric().step());
      EXPECT_EQ(rep.metric().stage(), v1::PRETRAIN);
    }
  }
  EXPECT_LE(progress, 2);  // 100 updates, one or two sends
  EXPECT_EQ(last_done, 100);
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_LE(sink.calls.load(), 3);
}

TEST(BatchingReporterTest, NothingIsLostWhileTheControllerIsDown) {
  FakeSink sink;
  sink.down = true;
  BatchingReporter r(v1::PRETRAIN, sink.Fn(), milliseconds(20));
  for (int i = 0; i < 50; ++i) r.Metric("train/loss", i, i);
  v1::CheckpointRecord c;
  c.set_step(50);
  r.Checkpoint(c);
  std::this_thread::sleep_for(milliseconds(150));
  EXPECT_GT(sink.calls.load(), 1);  // it kept trying
  EXPECT_TRUE(sink.Received().empty());
  sink.down = false;  // the controller is back
  r.Finish(std::chrono::seconds(5));
  auto got = sink.Received();
  ASSERT_EQ(got.size(), 51u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(got[i].metric().step(), i);
  EXPECT_EQ(got[50].checkpoint().step(), 50);
  EXPECT_EQ(r.dropped_on_finish(), 0);
}

TEST(BatchingReporterTest, StaleAttemptOrControllerCancelStopsTheStage) {
  FakeSink sink;
  sink.stale = true;
  BatchingReporter r(v1::PREPARE, sink.Fn(), milliseconds(10));
  EXPECT_FALSE(r.Cancelled());
  r.Log("info", "x");
  for (int i = 0; i < 100 && !r.Cancelled(); ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(r.Cancelled());

  FakeSink sink2;
  sink2.cancel = true;
  BatchingReporter r2(v1::PREPARE, sink2.Fn(), milliseconds(10));
  r2.Progress(1, 2, "bytes");
  for (int i = 0; i < 100 && !r2.Cancelled(); ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(r2.Cancelled());
}

TEST(BatchingReporterTest, CheckpointIsSentAtOnceAndHookFillsIt) {
  FakeSink sink;
  BatchingReporter r(v1::PRETRAIN, sink.Fn(), std::chrono::seconds(60),
                     [](v1::CheckpointRecord* c) { c->set_job_id("j1"); });
  v1::CheckpointRecord c;
  c.set_step(7);
  r.Checkpoint(c);
  for (int i = 0; i < 200 && sink.Received().empty(); ++i)
    std::this_thread::sleep_for(milliseconds(5));
  auto got = sink.Received();
  ASSERT_EQ(got.size(), 1u);  // long before the 60 s interval
  EXPECT_EQ(got[0].checkpoint().job_id(), "j1");
  EXPECT_TRUE(got[0].checkpoint().has_created_at());
}

TEST(BatchingReporterTest, FinishGivesUpAtItsDeadline) {
  FakeSink sink;
  sink.down = true;
  BatchingReporter r(v1::PRETRAIN, sink.Fn(), milliseconds(10));
  r.Metric("m", 1, 1);
  const auto start = std::chrono::steady_clock::now();
  r.Finish(milliseconds(200));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(r.dropped_on_finish(), 1);
}

}  // namespace
}  // namespace bert::agent
