// Costs are bounded for every caller, over real RPCs to an in-process bertd on
// loopback, each with a valid token of the role the call needs: a viewer's
// YAML alias bomb is refused fast; GetMetrics comes in pages that respect
// their cap (and BertClient joins them); an agent cannot grow a job's metric
// names without bound; WatchJob on an unknown job holds nothing, a finished
// job's watch ends after its history, and concurrent watches are capped.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "client/bert_client.h"
#include "common/atomic_file.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/controller.h"
#include "server/report_intake.h"
#include "spec/yaml_proto_reader.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {

constexpr char kTokens[] =
    "submit-token-0123456789 submitter alice\n"
    "viewer-token-0123456789 viewer carol\n"
    "viewer-token-dave-01234 viewer dave\n"
    "agent-token-01234567890 agent agent-1\n";
constexpr char kSubmitter[] = "submit-token-0123456789";
constexpr char kViewer[] = "viewer-token-0123456789";
constexpr char kViewer2[] = "viewer-token-dave-01234";
constexpr char kAgent[] = "agent-token-01234567890";

constexpr char kSpec[] = R"(name: bounded
corpus:
  sources:
    - paths: [data/*.txt]
      format: text
model:
  preset: bert-tiny
output:
  dir: out
)";

// Starts at PRETRAIN: its dataset and tokenizer come from the spec.
constexpr char kPretrainSpec[] = R"(name: checkpoints
preprocess:
  from_dataset: ds
tokenizer:
  from: tok/tokenizer.json
model:
  preset: bert-tiny
)";

class CostBoundsTest : public ::testing::Test {
 protected:
  void Start(EventBusOptions watches = {}) {
    ASSERT_TRUE(WriteFileAtomically((dir_ / "tokens.txt").string(), kTokens).ok());
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = (dir_ / "data").string();
    options.tokens_file = (dir_ / "tokens.txt").string();
    options.check_spec_paths = false;
    options.watches = watches;
    auto c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(c).value();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(controller_->port()),
                                   grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
    agents_ = v1::AgentService::NewStub(channel_);
  }
  void TearDown() override { controller_.reset(); }

  static std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  std::string Submit(const char* spec = kSpec) {
    v1::SubmitJobRequest request;
    request.set_spec_yaml(spec);
    v1::SubmitJobResponse response;
    grpc::Status s = jobs_->SubmitJob(Context(kSubmitter).get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.job().id();
  }

  // Submits a job and takes its first piece as agent-1: a live attempt to report for.
  v1::AssignmentRef SubmitAndAcquire(const char* spec = kSpec) {
    Submit(spec);
    v1::RegisterRequest reg;
    reg.mutable_agent()->set_id("agent-1");
    reg.mutable_agent()->add_pools("cpu");
    reg.mutable_agent()->add_pools("train");
    v1::RegisterResponse registered;
    grpc::Status s = agents_->Register(Context(kAgent).get(), reg, &registered);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id("agent-1");
    v1::AcquireAssignmentResponse acquired;
    s = agents_->AcquireAssignment(Context(kAgent).get(), acquire, &acquired);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(acquired.has_assignment());
    return acquired.assignment().ref();
  }

  grpc::Status Report(const v1::AssignmentRef& ref, const std::vector<v1::MetricPoint>& points) {
    v1::ReportStageRequest request;
    *request.mutable_ref() = ref;
    for (const v1::MetricPoint& point : points) *request.add_reports()->mutable_metric() = point;
    v1::ReportStageResponse response;
    return agents_->ReportStage(Context(kAgent).get(), request, &response);
  }

  static v1::MetricPoint Point(const std::string& name, int64_t step) {
    v1::MetricPoint point;
    point.set_name(name);
    point.set_step(step);
    point.set_value(static_cast<double>(step) / 8);
    return point;
  }

  v1::Job GetJob(const std::string& id) {
    v1::GetJobRequest request;
    request.set_job_id(id);
    v1::Job job;
    grpc::Status s = jobs_->GetJob(Context(kViewer).get(), request, &job);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return job;
  }

  // Waits until the bus holds `n` subscriptions (watches subscribe on their own thread).
  bool WaitForSubscribers(size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (controller_->bus().SubscriberCount() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  const bert::testing::TempDir temp_dir_{"cost_bounds_"};
  const std::filesystem::path dir_ = temp_dir_.path();
  std::unique_ptr<Controller> controller_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
};

TEST_F(CostBoundsTest, AViewersYamlAliasBombIsRefusedFast) {
  Start();
  // The issue's 60 KB spec: one long `paths` list under an anchor, aliased by every other source.
  std::string yaml = "name: bomb\ncorpus:\n  sources:\n    - &s {paths: &p [";
  for (int i = 0; i < 2500; ++i) absl::StrAppend(&yaml, i == 0 ? "" : ", ", "d/", i, ".txt");
  yaml += "]}\n";
  for (int i = 0; i < 5000; ++i) yaml += "    - *s\n";
  v1::ValidateSpecRequest request;
  request.set_spec_yaml(yaml);
  v1::ValidateSpecResponse response;
  const auto start = std::chrono::steady_clock::now();
  grpc::Status s = jobs_->ValidateSpec(Context(kViewer).get(), request, &response);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.errors_size(), 1);
  EXPECT_NE(response.errors(0).message().find(absl::StrCat("the limit is ", spec::kMaxYamlAliases)),
            std::string::npos)
      << response.errors(0).message();
  EXPECT_EQ(response.errors(0).line(), 5 + spec::kMaxYamlAliases);
  EXPECT_LT(seconds, 2.0) << "8.8 s before the bound";
}

TEST_F(CostBoundsTest, GetMetricsComesInPagesThatRespectTheirCap) {
  Start();
  const v1::AssignmentRef ref = SubmitAndAcquire();
  const std::vector<std::string> names = {"eval/loss", "train/learning_rate", "train/loss"};
  constexpr int kPerName = 1500;
  for (const std::string& name : names) {
    std::vector<v1::MetricPoint> points;
    for (int step = 0; step < kPerName; ++step) points.push_back(Point(name, step));
    grpc::Status s = Report(ref, points);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // Raw pages of 700 points: every page within its cap, in (name, step) order, nothing twice.
  v1::GetMetricsRequest request;
  request.set_job_id(ref.job_id());
  request.set_page_size(700);
  std::vector<std::pair<std::string, int64_t>> seen;
  int pages = 0;
  do {
    v1::GetMetricsResponse page;
    grpc::Status s = jobs_->GetMetrics(Context(kViewer).get(), request, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    int in_page = 0;
    for (const v1::MetricSeries& series : page.series()) {
      for (const v1::MetricPoint& point : series.points()) {
        EXPECT_EQ(point.name(), series.name());
        seen.emplace_back(point.name(), point.step());
        ++in_page;
      }
    }
    EXPECT_LE(in_page, 700);
    EXPECT_GT(in_page, 0);
    ++pages;
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && pages < 100);
  EXPECT_EQ(pages, (3 * kPerName + 699) / 700);
  ASSERT_EQ(seen.size(), 3u * kPerName);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].first, names[i / kPerName]);
    EXPECT_EQ(seen[i].second, static_cast<int64_t>(i % kPerName));
  }

  // A names filter pages the same way.
  request.clear_page_token();
  request.add_names("train/loss");
  request.add_names("eval/loss");
  request.set_page_size(1000);
  v1::GetMetricsResponse first;
  ASSERT_TRUE(jobs_->GetMetrics(Context(kViewer).get(), request, &first).ok());
  ASSERT_EQ(first.series_size(), 1);
  EXPECT_EQ(first.series(0).name(), "eval/loss");
  EXPECT_EQ(first.series(0).points_size(), 1000);
  EXPECT_FALSE(first.next_page_token().empty());

  // A forged token is refused, not followed outside the job.
  request.set_page_token("not base64 !");
  v1::GetMetricsResponse bad;
  EXPECT_EQ(jobs_->GetMetrics(Context(kViewer).get(), request, &bad).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // BertClient (bertctl metrics) follows the pages and joins the series.
  client::ClientOptions options;
  options.token = kViewer;
  client::BertClient client(channel_, options);
  auto all = client.GetMetrics(ref.job_id(), {}, 1000);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->series_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(all->series(i).name(), names[i]);
    EXPECT_EQ(all->series(i).points_size(), kPerName);
  }
  // An old caller (no page size, no token) gets a whole small history at once.
  v1::GetMetricsRequest old;
  old.set_job_id(ref.job_id());
  v1::GetMetricsResponse everything;
  ASSERT_TRUE(jobs_->GetMetrics(Context(kViewer).get(), old, &everything).ok());
  EXPECT_EQ(everything.series_size(), 3);
  EXPECT_TRUE(everything.next_page_token().empty());
}

TEST_F(CostBoundsTest, ADefaultPageStaysUnderItsByteCap) {
  Start();
  const v1::AssignmentRef ref = SubmitAndAcquire();
  // Points with the longest names allowed, about 170 bytes each stored: 40,000
  // of them are about 6 MiB, so the 3 MiB page cap applies before the point cap.
  // The test's channel keeps gRPC's default 4 MiB receive limit.
  const std::string name(ReportIntake::kMaxMetricNameBytes, 'm');
  for (int call = 0; call < 5; ++call) {
    std::vector<v1::MetricPoint> points;
    for (int i = 0; i < 8000; ++i) points.push_back(Point(name, call * 8000 + i));
    grpc::Status s = Report(ref, points);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  v1::GetMetricsRequest request;
  request.set_job_id(ref.job_id());
  int64_t total = 0;
  int pages = 0;
  do {
    v1::GetMetricsResponse page;
    grpc::Status s = jobs_->GetMetrics(Context(kViewer).get(), request, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LE(page.ByteSizeLong(), 4u << 20);  // any default gRPC client can receive it
    for (const auto& series : page.series()) total += series.points_size();
    ++pages;
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && pages < 100);
  EXPECT_GE(pages, 2);
  EXPECT_EQ(total, 40000);
}

TEST_F(CostBoundsTest, AnAgentCannotGrowAJobsMetricNamesWithoutBound) {
  Start();
  const v1::AssignmentRef ref = SubmitAndAcquire();
  constexpr int kFlood = ReportIntake::kMaxMetricNamesPerJob + 100;
  std::vector<v1::MetricPoint> points;
  for (int i = 0; i < kFlood; ++i) points.push_back(Point(absl::StrCat("flood/", i), 1));
  grpc::Status s = Report(ref, points);
  ASSERT_TRUE(s.ok()) << s.error_message();  // the extra names are dropped, the rest kept
  v1::Job job = GetJob(ref.job_id());
  EXPECT_EQ(job.latest_metrics_size(), ReportIntake::kMaxMetricNamesPerJob);
  // An existing name still updates; a new one is still dropped.
  s = Report(ref, {Point("flood/0", 7), Point("flood/new", 7)});
  ASSERT_TRUE(s.ok()) << s.error_message();
  job = GetJob(ref.job_id());
  EXPECT_EQ(job.latest_metrics_size(), ReportIntake::kMaxMetricNamesPerJob);
  EXPECT_DOUBLE_EQ(job.latest_metrics().at("flood/0"), 7.0 / 8);
  EXPECT_EQ(job.latest_metrics().count("flood/new"), 0u);
  // Nothing was stored for the dropped names, and the job's log says why.
  v1::GetMetricsRequest request;
  request.set_job_id(ref.job_id());
  v1::GetMetricsResponse metrics;
  ASSERT_TRUE(jobs_->GetMetrics(Context(kViewer).get(), request, &metrics).ok());
  EXPECT_EQ(metrics.series_size(), ReportIntake::kMaxMetricNamesPerJob);
  v1::WatchJobRequest watch;
  watch.set_job_id(ref.job_id());
  auto context = Context(kViewer);
  auto reader = jobs_->WatchJob(context.get(), watch);
  v1::Event event;
  int warnings = 0;
  while (reader->Read(&event)) {
    if (event.has_log() && event.log().level() == "warning" &&
        event.log().message().find(absl::StrCat(ReportIntake::kMaxMetricNamesPerJob,
                                                " metric names, the limit")) != std::string::npos) {
      ++warnings;
    }
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(warnings, 2);  // one per report that dropped points

  // Names are bounded in length and characters: such a report is refused whole.
  for (const std::string& bad : {std::string(ReportIntake::kMaxMetricNameBytes + 1, 'x'),
                                 std::string("a b"), std::string("loss{job=\"x\"}")}) {
    s = Report(ref, {Point("flood/1", 2), Point(bad, 2)});
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
  }
  EXPECT_DOUBLE_EQ(GetJob(ref.job_id()).latest_metrics().at("flood/1"), 1.0 / 8);
}

// Checkpoint records: at most kMaxCheckpointsPerJob per job (more are
// dropped, one warning says so), a bounded metric map each, and
// ListCheckpoints in pages.
TEST_F(CostBoundsTest, CheckpointRecordsAreBoundedAndListedInPages) {
  Start();
  const v1::AssignmentRef ref = SubmitAndAcquire(kPretrainSpec);
  ASSERT_EQ(ref.stage(), v1::PRETRAIN) << [&] {
    v1::ListJobsResponse jobs;
    jobs_->ListJobs(Context(kViewer).get(), v1::ListJobsRequest(), &jobs);
    return jobs.DebugString();
  }();
  const auto report = [&](int64_t first_step, int count, int metrics_each) {
    v1::ReportStageRequest request;
    *request.mutable_ref() = ref;
    for (int i = 0; i < count; ++i) {
      v1::CheckpointRecord* c = request.add_reports()->mutable_checkpoint();
      c->set_step(first_step + i);
      for (int m = 0; m < metrics_each; ++m) (*c->mutable_metrics())[absl::StrCat("m", m)] = m;
    }
    v1::ReportStageResponse response;
    return agents_->ReportStage(Context(kAgent).get(), request, &response);
  };
  // Too many values on one record: the report is refused whole.
  grpc::Status s = report(0, 1, ReportIntake::kMaxCheckpointMetrics + 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  constexpr int kCap = static_cast<int>(ReportIntake::kMaxCheckpointsPerJob);
  s = report(1, kCap, 2);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = report(kCap + 1, 5, 2);  // past the bound: dropped
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = report(kCap + 6, 5, 2);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(GetJob(ref.job_id()).checkpoint_records(), kCap + 10);

  v1::ListCheckpointsRequest request;
  request.set_job_id(ref.job_id());
  request.set_page_size(4000);  // over the server's cap of 1,000
  std::vector<int64_t> steps;
  int pages = 0;
  do {
    v1::ListCheckpointsResponse page;
    s = jobs_->ListCheckpoints(Context(kViewer).get(), request, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LE(page.checkpoints_size(), 1000);
    EXPECT_GT(page.checkpoints_size(), 0);
    for (const v1::CheckpointRecord& c : page.checkpoints()) steps.push_back(c.step());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && ++pages < 100);
  ASSERT_EQ(steps.size(), static_cast<size_t>(kCap));
  for (int i = 0; i < kCap; ++i) EXPECT_EQ(steps[i], i + 1);
  request.set_page_token("not base64 !");
  v1::ListCheckpointsResponse bad;
  EXPECT_EQ(jobs_->ListCheckpoints(Context(kViewer).get(), request, &bad).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // BertClient (bertctl checkpoints) follows the pages.
  client::ClientOptions options;
  options.token = kViewer;
  client::BertClient client(channel_, options);
  auto all = client.ListCheckpoints(ref.job_id());
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->checkpoints_size(), kCap);
  // One warning, when the bound was first crossed.
  v1::WatchJobRequest watch;
  watch.set_job_id(ref.job_id());
  auto context = Context(kViewer);
  auto reader = jobs_->WatchJob(context.get(), watch);
  v1::Event event;
  int warnings = 0;
  while (reader->Read(&event)) {
    warnings += event.has_log() &&
                event.log().message().find("checkpoint records") != std::string::npos;
  }
  EXPECT_EQ(warnings, 1);
}

TEST_F(CostBoundsTest, WatchingAnUnknownJobIsNotFoundAndHoldsNothing) {
  Start();
  for (bool follow : {true, false}) {
    v1::WatchJobRequest request;
    request.set_job_id("j-does-not-exist");
    request.set_follow(follow);
    auto context = Context(kViewer);
    auto reader = jobs_->WatchJob(context.get(), request);
    v1::Event event;
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(controller_->bus().SubscriberCount(), 0u);
  EXPECT_EQ(controller_->bus().SubscriberCount("j-does-not-exist"), 0u);
}

TEST_F(CostBoundsTest, AFinishedJobsWatchSendsItsHistoryAndEnds) {
  Start();
  const std::string id = Submit();
  v1::CancelJobRequest cancel;
  cancel.set_job_id(id);
  v1::Job cancelled;
  ASSERT_TRUE(jobs_->CancelJob(Context(kSubmitter).get(), cancel, &cancelled).ok());
  v1::WatchJobRequest request;
  request.set_job_id(id);
  request.set_follow(true);
  auto context = Context(kViewer);
  auto reader = jobs_->WatchJob(context.get(), request);
  v1::Event event;
  int events = 0;
  while (reader->Read(&event)) ++events;
  EXPECT_TRUE(reader->Finish().ok());  // ended by the server, well before the deadline
  EXPECT_GT(events, 0);
  EXPECT_TRUE(WaitForSubscribers(0));
}

TEST_F(CostBoundsTest, ConcurrentWatchesAreCapped) {
  Start({.per_watcher_capacity = 16, .max_watchers = 3, .max_watchers_per_owner = 2});
  const std::string id = Submit();
  struct Watch {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<v1::Event>> reader;
  };
  auto open = [&](const std::string& token) {
    Watch w;
    w.context = Context(token);
    v1::WatchJobRequest request;
    request.set_job_id(id);
    request.set_follow(true);
    w.reader = jobs_->WatchJob(w.context.get(), request);
    return w;
  };
  auto refused = [&](const std::string& token) {
    Watch w = open(token);
    v1::Event event;
    while (w.reader->Read(&event)) {
    }
    return w.reader->Finish();
  };
  std::vector<Watch> held;
  held.push_back(open(kViewer));
  held.push_back(open(kViewer));
  ASSERT_TRUE(WaitForSubscribers(2));
  grpc::Status third = refused(kViewer);  // over carol's 2
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(third.error_message().find("at most 2"), std::string::npos) << third.error_message();
  held.push_back(open(kViewer2));  // dave has his own allowance
  ASSERT_TRUE(WaitForSubscribers(3));
  grpc::Status fourth = refused(kSubmitter);  // over 3 in all
  EXPECT_EQ(fourth.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(fourth.error_message().find("at most 3"), std::string::npos) << fourth.error_message();
  // Watches that end give their place back.
  for (Watch& w : held) {
    w.context->TryCancel();
    v1::Event event;
    while (w.reader->Read(&event)) {
    }
    w.reader->Finish();
  }
  EXPECT_TRUE(WaitForSubscribers(0));
  held.clear();
  held.push_back(open(kViewer));
  EXPECT_TRUE(WaitForSubscribers(1));
  held[0].context->TryCancel();
  held[0].reader->Finish();
}

TEST(EventBusBoundsTest, SubscriptionsLeaveWhenReleasedAndSlowQueuesAreBounded) {
  EventBus bus(EventBusOptions{.per_watcher_capacity = 100, .per_watcher_bytes = 1000});
  {
    auto never_published = bus.SubscribeFor("carol", "j-unknown");
    ASSERT_TRUE(never_published.ok());
    EXPECT_EQ(bus.SubscriberCount("j-unknown"), 1u);
  }
  EXPECT_EQ(bus.SubscriberCount(), 0u);  // no Publish needed to clean it up
  auto sub = bus.SubscribeFor("carol", "j-1");
  ASSERT_TRUE(sub.ok());
  v1::Event event;
  event.set_job_id("j-1");
  event.mutable_log()->set_message(std::string(400, 'x'));
  bus.Publish({event, event});
  bool lagged = true;
  EXPECT_EQ((*sub)->Next(absl::ZeroDuration(), &lagged).size(), 2u);
  EXPECT_FALSE(lagged);
  bus.Publish({event, event, event});  // over 1000 bytes queued: dropped, the watcher re-reads
  EXPECT_TRUE((*sub)->Next(absl::ZeroDuration(), &lagged).size() <= 1u);
  EXPECT_TRUE(lagged);
}

}  // namespace
}  // namespace bert::server
