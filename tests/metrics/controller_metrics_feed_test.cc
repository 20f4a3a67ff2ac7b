// ControllerMetricsFeed against a real JobManager and store with a fake clock:
// stage progress, queue length, agents by health, store size, stages recounted
// after a restart, and finished jobs' series removed after the retention period.
#include "server/controller_metrics_feed.h"

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "metrics/metrics_exposer.h"
#include "server/clock.h"
#include "server/event_bus.h"
#include "server/job_manager.h"
#include "storage/store.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {

constexpr char kSpec[] = R"(name: feed
corpus:
  sources:
    - paths: [data/*.txt]
      format: text
model:
  preset: bert-tiny
training:
  max_steps: 10
resources:
  prep_pool: cpu
  train_pool: train
output:
  dir: out
)";

constexpr absl::Duration kRetention = absl::Minutes(10);

bool HasLine(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

class ControllerMetricsFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Open();
  }
  void TearDown() override {
    feed_.reset();
    manager_.reset();
    store_.reset();
  }

  // (Re)opens the store, manager, metrics and feed, as a bertd (re)start does.
  void Open() {
    feed_.reset();
    manager_.reset();
    store_.reset();
    metrics_ = std::make_unique<metrics::ControllerMetrics>(kRetention);
    std::filesystem::create_directories(dir_ / "db");
    auto store = storage::Store::Open((dir_ / "db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
    JobManagerOptions options;
    options.check_spec_paths = false;
    options.lease_ttl = absl::Seconds(10);
    options.heartbeat_interval = absl::Seconds(2);
    auto manager = JobManager::Create(store_.get(), &bus_, &clock_, options, metrics_.get());
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = std::move(manager).value();
    ControllerMetricsFeedOptions feed_options;
    feed_options.store_dir = (dir_ / "db").string();
    feed_ = std::make_unique<ControllerMetricsFeed>(manager_.get(), metrics_.get(), &clock_,
                                                    feed_options);
  }

  std::string Text() { return metrics::SerializeMetrics({metrics_->registry()}); }

  std::string Submit() {
    v1::SubmitJobRequest request;
    request.set_spec_yaml(kSpec);
    auto result = manager_->Submit(request, "alice");
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->job.id() : "";
  }

  void RegisterAgent(const std::string& id) {
    v1::AgentInfo agent;
    agent.set_id(id);
    agent.add_pools("cpu");
    agent.add_pools("train");
    agent.mutable_resources()->set_accelerator(v1::CPU);
    ASSERT_TRUE(manager_->Register(agent).ok());
  }

  void ReportProgress(const v1::Assignment& a, int64_t done, int64_t total) {
    v1::ReportStageRequest request;
    *request.mutable_ref() = a.ref();
    v1::Progress* p = request.add_reports()->mutable_progress();
    p->set_done(done);
    p->set_total(total);
    p->set_unit("lines");
    p->set_rate_per_second(100);
    p->set_eta_seconds(static_cast<double>(total - done) / 100);
    ASSERT_TRUE(manager_->Report(request).ok());
  }

  const bert::testing::TempDir temp_dir_{"feed_"};  // removed after the members below
  const std::filesystem::path dir_ = temp_dir_.path();
  FakeClock clock_;
  EventBus bus_;
  std::unique_ptr<metrics::ControllerMetrics> metrics_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<JobManager> manager_;
  std::unique_ptr<ControllerMetricsFeed> feed_;
};

TEST_F(ControllerMetricsFeedTest, QueueAgentsProgressAndStoreSize) {
  const std::string job = Submit();
  RegisterAgent("a1");
  feed_->PollOnce();
  std::string text = Text();
  EXPECT_TRUE(HasLine(text, R"(bert_controller_queue_length{pool="cpu"} 1)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_queue_length{pool="train"} 0)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_agents{health="healthy",pool="cpu"} 1)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_agents{health="healthy",pool="train"} 1)")) << text;
  EXPECT_EQ(text.find("bert_controller_store_size_bytes 0\n"), std::string::npos) << text;

  auto a = manager_->Acquire("a1", absl::ZeroDuration());
  ASSERT_TRUE(a.ok() && a->has_value());
  ReportProgress(**a, 25, 100);
  feed_->PollOnce();
  text = Text();
  EXPECT_TRUE(HasLine(text, R"(bert_controller_queue_length{pool="cpu"} 0)")) << text;
  EXPECT_TRUE(HasLine(text, "bert_controller_job_stage_progress_ratio{job_id=\"" + job +
                                "\",stage=\"prepare\"} 0.25"))
      << text;
  EXPECT_TRUE(HasLine(
      text, "bert_controller_job_stage_eta_seconds{job_id=\"" + job + "\",stage=\"prepare\"} 0.75"))
      << text;

  // The agent stops heart-beating: its lease expires and it reads unhealthy.
  clock_.Advance(absl::Seconds(11));
  ASSERT_TRUE(manager_->Tick().ok());
  feed_->PollOnce();
  text = Text();
  EXPECT_TRUE(HasLine(text, R"(bert_controller_agents{health="healthy",pool="cpu"} 0)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_agents{health="unhealthy",pool="cpu"} 1)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_lease_expiries_total{cause="agent_heartbeat"} 1)"))
      << text;
}

TEST_F(ControllerMetricsFeedTest, FinishedJobsSeriesGoAfterTheRetentionPeriod) {
  const std::string done = Submit();
  const std::string running = Submit();
  RegisterAgent("a1");
  RegisterAgent("a2");
  for (const char* agent : {"a1", "a2"}) {
    auto a = manager_->Acquire(agent, absl::ZeroDuration());
    ASSERT_TRUE(a.ok() && a->has_value());
    ReportProgress(**a, 10, 100);
    v1::ReportStageRequest metric;
    *metric.mutable_ref() = (*a)->ref();
    v1::MetricPoint* m = metric.add_reports()->mutable_metric();
    m->set_name("train/loss");
    m->set_value(7.5);
    m->set_step(1);
    ASSERT_TRUE(manager_->Report(metric).ok());
  }
  feed_->PollOnce();
  EXPECT_EQ(metrics_->jobs().JobCount(), 2u);

  ASSERT_TRUE(manager_->Cancel(done, "test").ok());
  feed_->PollOnce();  // the retention clock starts now
  clock_.Advance(kRetention - absl::Seconds(1));
  feed_->PollOnce();
  std::string text = Text();
  EXPECT_NE(text.find("job_id=\"" + done + "\""), std::string::npos) << "removed too early";
  EXPECT_EQ(metrics_->jobs().JobCount(), 2u);

  clock_.Advance(absl::Seconds(1));
  feed_->PollOnce();
  text = Text();
  EXPECT_EQ(text.find("job_id=\"" + done + "\""), std::string::npos) << text;
  EXPECT_NE(text.find("job_id=\"" + running + "\""), std::string::npos) << text;
  EXPECT_EQ(metrics_->jobs().JobCount(), 1u);
}

TEST_F(ControllerMetricsFeedTest, StagesByStateAreRecountedAfterARestart) {
  Submit();
  Submit();
  Open();  // a restarted bertd starts from zeroed gauges
  feed_->PollOnce();
  const std::string text = Text();
  EXPECT_TRUE(HasLine(text, R"(bert_controller_stages{stage="prepare",state="queued"} 2)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_stages{stage="pretrain",state="queued"} 2)"))
      << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_jobs{state="queued"} 2)")) << text;
}

TEST_F(ControllerMetricsFeedTest, ThreadPollsUntilStopped) {
  Submit();
  ControllerMetricsFeedOptions options;
  options.interval = absl::Milliseconds(20);
  ControllerMetricsFeed feed(manager_.get(), metrics_.get(), &clock_, options);
  feed.Start();
  for (int i = 0; i < 200 && !HasLine(Text(), R"(bert_controller_queue_length{pool="cpu"} 1)");
       ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  feed.Stop();
  EXPECT_TRUE(HasLine(Text(), R"(bert_controller_queue_length{pool="cpu"} 1)")) << Text();
}

// A job whose queued stage no live agent could ever run is counted by pool,
// and the count falls back to 0 once an agent that could registers.
TEST_F(ControllerMetricsFeedTest, UnschedulableJobsByPool) {
  const std::string job = Submit();  // prepare runs in pool "cpu"
  v1::AgentInfo trainer;
  trainer.set_id("t1");
  trainer.add_pools("train");
  trainer.mutable_resources()->set_accelerator(v1::CPU);
  ASSERT_TRUE(manager_->Register(trainer).ok());
  ASSERT_TRUE(manager_->Tick().ok());
  feed_->PollOnce();
  std::string text = Text();
  EXPECT_TRUE(HasLine(text, R"(bert_controller_unschedulable_jobs{pool="cpu"} 1)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_unschedulable_jobs{pool="train"} 0)")) << text;

  RegisterAgent("a1");
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(manager_->Tick().ok());
  feed_->PollOnce();
  text = Text();
  EXPECT_TRUE(HasLine(text, R"(bert_controller_unschedulable_jobs{pool="cpu"} 0)")) << text;
}

}  // namespace
}  // namespace bert::server
