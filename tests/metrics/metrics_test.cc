// ControllerMetrics, AgentMetrics and MetricsExposer: the text exposition they
// produce (names, types, labels, values) and a real scrape over loopback HTTP.
#include <map>
#include <regex>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "metrics/agent_metrics.h"
#include "metrics/controller_metrics.h"
#include "metrics/metrics_exposer.h"
#include "tests/metrics/http_get.h"

namespace bert::metrics {
namespace {

std::string Text(const std::shared_ptr<prometheus::Registry>& registry) {
  return SerializeMetrics({registry});
}

bool HasLine(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

// Every "# TYPE name type" line of an exposition.
std::map<std::string, std::string> Types(const std::string& text) {
  std::map<std::string, std::string> types;
  std::regex type_line(R"(# TYPE (\S+) (\S+))");
  for (std::sregex_iterator it(text.begin(), text.end(), type_line), end; it != end; ++it) {
    types[(*it)[1]] = (*it)[2];
  }
  return types;
}

TEST(MetricNamesTest, FollowTheConvention) {
  ControllerMetrics controller;
  AgentMetrics agent;
  controller.ObserveRpc("/bert.v1.JobService/GetJob", 0, 0.01);
  controller.SetQueueLength("cpu", 1);
  controller.SetAgents("cpu", true, 1);
  controller.SetJobMetric("job-1", "train/loss", 2.0, 5);
  agent.ObserveRpc("Heartbeat", 0, 0.01);
  agent.SetInfo("agent-1", "0.1.0", {"cpu"});
  agent.jobs().SetMetric("job-1", "train/loss", 2.0, 5);
  for (const auto& [registry, component] :
       {std::pair{controller.registry(), std::string("controller")},
        std::pair{agent.registry(), std::string("agent")}}) {
    auto types = Types(Text(registry));
    EXPECT_GE(types.size(), 10u);
    for (const auto& [name, type] : types) {
      EXPECT_EQ(name.rfind("bert_" + component + "_", 0), 0u) << name;
      EXPECT_TRUE(std::regex_match(name, std::regex("[a-z_]+"))) << name;
      if (type == "counter") {
        EXPECT_TRUE(name.ends_with("_total")) << name;
      } else {
        EXPECT_FALSE(name.ends_with("_total")) << name;
      }
      if (type == "histogram") {
        EXPECT_TRUE(name.ends_with("_seconds")) << name;
      }
    }
  }
}

TEST(ControllerMetricsTest, JobAndStageStatesFollowTransitions) {
  ControllerMetrics metrics;
  std::string text = Text(metrics.registry());
  // Bounded series exist at zero before any event.
  EXPECT_TRUE(HasLine(text, R"(bert_controller_jobs{state="queued"} 0)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_stages{stage="pretrain",state="running"} 0)"));

  metrics.OnJobStateChanged(v1::STATE_UNSPECIFIED, v1::QUEUED);
  metrics.OnJobStateChanged(v1::STATE_UNSPECIFIED, v1::QUEUED);
  metrics.OnJobStateChanged(v1::QUEUED, v1::RUNNING);
  metrics.OnStageStateChanged(v1::PREPARE, v1::QUEUED, v1::RUNNING);
  metrics.SetStagesByState(v1::PREPARE, v1::QUEUED, 3);
  text = Text(metrics.registry());
  EXPECT_TRUE(HasLine(text, R"(bert_controller_jobs{state="queued"} 1)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_jobs{state="running"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_transitions_total{to="queued"} 2)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_stages{stage="prepare",state="running"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_stages{stage="prepare",state="queued"} 3)"));

  metrics.SetJobsByState(v1::SUCCEEDED, 42);
  EXPECT_TRUE(HasLine(Text(metrics.registry()), R"(bert_controller_jobs{state="succeeded"} 42)"));
}

TEST(ControllerMetricsTest, QueueAgentsLeasesRetriesStoreArtifacts) {
  ControllerMetrics metrics;
  metrics.SetQueueLength("train", 4);
  metrics.ObserveQueueWait(v1::TOKENIZER, 2.0);
  metrics.ObserveStageDuration(v1::PRETRAIN, v1::SUCCEEDED, 3600);
  metrics.SetAgents("cpu", true, 3);
  metrics.SetAgents("cpu", false, 1);
  metrics.OnLeaseExpired(LeaseExpiryCause::kAgentHeartbeat);
  metrics.OnRetry(v1::PREPROCESS, v1::WORKER_CRASHED);
  metrics.OnRetry(v1::PREPROCESS, v1::WORKER_CRASHED);
  metrics.ObserveStoreWrite(0.002);
  metrics.SetStoreSizeBytes(123456);
  metrics.AddArtifactBytes(ArtifactDirection::kUpload, 1000);
  metrics.AddArtifactBytes(ArtifactDirection::kUpload, 24);
  const std::string text = Text(metrics.registry());
  EXPECT_TRUE(HasLine(text, R"(bert_controller_queue_length{pool="train"} 4)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_queue_wait_seconds_count{stage="tokenizer"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_queue_wait_seconds_sum{stage="tokenizer"} 2)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(bert_controller_stage_duration_seconds_count{result="succeeded",stage="pretrain"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_agents{health="healthy",pool="cpu"} 3)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_agents{health="unhealthy",pool="cpu"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_lease_expiries_total{cause="agent_heartbeat"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_lease_expiries_total{cause="assignment"} 0)"));
  EXPECT_TRUE(HasLine(
      text, R"(bert_controller_retries_total{cause="worker_crashed",stage="preprocess"} 2)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_store_write_duration_seconds_count 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_store_size_bytes 123456)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_artifact_bytes_total{direction="upload"} 1024)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_artifact_bytes_total{direction="download"} 0)"));
}

TEST(ControllerMetricsTest, RpcMethodsAndCodesAreNamedAndBounded) {
  ControllerMetrics metrics;
  metrics.ObserveRpc("/bert.v1.JobService/SubmitJob", 0, 0.003);
  metrics.ObserveRpc("/bert.v1.JobService/SubmitJob", 3, 0.001);
  metrics.ObserveRpc("/bert.v1.AgentService/Heartbeat", 14, 0.5);
  for (int i = 0; i < 200; ++i) metrics.ObserveRpc("/x.Y/Method" + std::to_string(i), 12, 0.001);
  metrics.ObserveRpc("/bert.v1.JobService/GetJob", 99, 0.001);
  const std::string text = Text(metrics.registry());
  EXPECT_TRUE(
      HasLine(text, R"(bert_controller_grpc_requests_total{code="OK",method="SubmitJob"} 1)"))
      << text.substr(0, 4000);
  EXPECT_TRUE(HasLine(
      text,
      R"(bert_controller_grpc_requests_total{code="INVALID_ARGUMENT",method="SubmitJob"} 1)"));
  EXPECT_TRUE(HasLine(
      text, R"(bert_controller_grpc_requests_total{code="UNAVAILABLE",method="Heartbeat"} 1)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(bert_controller_grpc_request_duration_seconds_bucket{method="SubmitJob",le="0.004"} 2)"));
  // 64 distinct methods at most; the rest fold into "other".
  EXPECT_TRUE(
      HasLine(text, R"(bert_controller_grpc_requests_total{code="UNKNOWN",method="other"} 1)"));
  std::set<std::string> methods;
  std::regex method_label(
      R"(bert_controller_grpc_requests_total\{code="[A-Z_]+",method="([^"]+)\")");
  for (std::sregex_iterator it(text.begin(), text.end(), method_label), end; it != end; ++it) {
    methods.insert((*it)[1]);
  }
  EXPECT_EQ(methods.size(), 65u);  // 64 admitted + "other"
}

TEST(JobMetricsTest, WorkerMetricsBecomePerJobGauges) {
  ControllerMetrics metrics;
  EXPECT_TRUE(metrics.SetJobMetric("job-a", "train/loss", 7.25, 100));
  EXPECT_TRUE(metrics.SetJobMetric("job-a", "train/learning_rate", 5e-5, 100));
  EXPECT_TRUE(metrics.SetJobMetric("job-a", "train/grad_norm", 1.5, 100));
  EXPECT_TRUE(metrics.SetJobMetric("job-a", "train/tokens_per_second", 20480, 100));
  EXPECT_TRUE(metrics.SetJobMetric("job-a", "train/mfu", 0.25, 100));
  EXPECT_TRUE(metrics.SetJobMetric("job-a", "eval/loss", 6.5, 100));
  EXPECT_TRUE(metrics.SetJobMetric("job-a", "eval/accuracy", 0.125, 100));
  EXPECT_FALSE(metrics.SetJobMetric("job-a", "train/made_up", 1, 100));
  v1::Progress progress;
  progress.set_done(250);
  progress.set_total(1000);
  progress.set_unit("steps");
  progress.set_rate_per_second(2.5);
  progress.set_eta_seconds(300);
  metrics.jobs().SetStageProgress("job-a", v1::PRETRAIN, progress);
  const std::string text = Text(metrics.registry());
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_train_loss{job_id="job-a"} 7.25)")) << text;
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_learning_rate{job_id="job-a"} 5e-05)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_grad_norm{job_id="job-a"} 1.5)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_tokens_per_second{job_id="job-a"} 20480)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_mfu_ratio{job_id="job-a"} 0.25)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_train_step{job_id="job-a"} 100)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_eval_loss{job_id="job-a"} 6.5)"));
  EXPECT_TRUE(HasLine(text, R"(bert_controller_job_eval_accuracy_ratio{job_id="job-a"} 0.125)"));
  EXPECT_TRUE(HasLine(
      text, R"(bert_controller_job_stage_progress_ratio{job_id="job-a",stage="pretrain"} 0.25)"));
  EXPECT_TRUE(HasLine(
      text,
      R"(bert_controller_job_stage_rate_per_second{job_id="job-a",stage="pretrain",unit="steps"} 2.5)"));
  EXPECT_TRUE(HasLine(
      text, R"(bert_controller_job_stage_eta_seconds{job_id="job-a",stage="pretrain"} 300)"));
}

TEST(JobMetricsTest, FinishedJobsAreRemovedAfterRetention) {
  ControllerMetrics metrics(absl::Minutes(10));
  JobMetrics& jobs = metrics.jobs();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  jobs.SetMetric("done", "train/loss", 1, 1);
  jobs.SetMetric("running", "train/loss", 2, 1);
  jobs.OnJobFinished("done", t0);
  EXPECT_EQ(jobs.JobCount(), 2u);
  jobs.ExpireFinishedJobs(t0 + absl::Minutes(9));
  EXPECT_EQ(jobs.JobCount(), 2u);
  jobs.ExpireFinishedJobs(t0 + absl::Minutes(10));
  EXPECT_EQ(jobs.JobCount(), 1u);
  std::string text = Text(metrics.registry());
  EXPECT_EQ(text.find(R"(job_id="done")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(job_id="running")"), std::string::npos);
  // Late reports for an expired job do not bring its series back...
  EXPECT_FALSE(jobs.SetMetric("done", "train/loss", 1, 2));
  EXPECT_EQ(jobs.JobCount(), 1u);
  // ...until it is active again (an agent taking another of its stages).
  jobs.OnJobActive("done");
  EXPECT_TRUE(jobs.SetMetric("done", "train/loss", 1, 2));
  jobs.ForgetJob("running");
  jobs.ForgetJob("done");
  EXPECT_EQ(jobs.JobCount(), 0u);
  text = Text(metrics.registry());
  EXPECT_EQ(text.find("job_id="), std::string::npos) << text;
}

TEST(JobMetricsTest, AJobsSeriesStayBoundedWhateverItReports) {
  ControllerMetrics metrics;
  JobMetrics& jobs = metrics.jobs();
  // A worker can only pick among the known metric names...
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(jobs.SetMetric("job-f", "flood/" + std::to_string(i), 1, 1));
  }
  EXPECT_EQ(jobs.SeriesCount("job-f"), 0u);
  // ...but a progress report's unit is free text: a unit is a label value, so
  // odd units are folded into "other" and the series of one job are capped.
  v1::Progress progress;
  progress.set_done(1);
  progress.set_total(2);
  progress.set_rate_per_second(1);
  progress.set_unit("Bad Unit{x=\"1\"}");
  jobs.SetStageProgress("job-f", v1::PREPARE, progress);
  std::string text = Text(metrics.registry());
  EXPECT_TRUE(HasLine(
      text, R"(bert_controller_job_stage_rate_per_second{job_id="job-f",stage="prepare",unit="other"} 1)"))
      << text;
  for (int i = 0; i < 5000; ++i) {
    std::string unit;
    for (int n = i; unit.size() < 4; n /= 26) unit.push_back(static_cast<char>('a' + n % 26));
    progress.set_unit(unit);
    jobs.SetStageProgress("job-f", static_cast<v1::StageKind>(1 + i % 5), progress);
  }
  EXPECT_EQ(jobs.SeriesCount("job-f"), JobMetrics::kMaxSeriesPerJob);
  // Series it already has still update; other jobs are unaffected.
  progress.set_unit("other");
  progress.set_rate_per_second(42);
  jobs.SetStageProgress("job-f", v1::PREPARE, progress);
  text = Text(metrics.registry());
  EXPECT_TRUE(HasLine(
      text, R"(bert_controller_job_stage_rate_per_second{job_id="job-f",stage="prepare",unit="other"} 42)"));
  EXPECT_TRUE(jobs.SetMetric("job-g", "train/loss", 1, 1));
  EXPECT_EQ(jobs.SeriesCount("job-g"), 2u);  // the loss and the step
}

TEST(AgentMetricsTest, AssignmentsHeartbeatsAndInfo) {
  AgentMetrics metrics;
  metrics.SetInfo("agent-7", "0.1.0", {"cpu", "train"});
  metrics.SetInfo("agent-7", "0.1.1", {"cpu", "train"});
  metrics.SetConnected(true);
  metrics.OnHeartbeat(true);
  metrics.OnHeartbeat(false);
  metrics.OnAssignmentStarted("job-1", v1::PREPARE);
  metrics.OnAssignmentStarted("job-1", v1::TOKENIZER);
  metrics.OnAssignmentFinished("job-1", v1::PREPARE, v1::SUCCEEDED, 12, absl::Now());
  metrics.OnWorkerExit(v1::PRETRAIN, v1::OUT_OF_MEMORY);
  metrics.AddArtifactBytes(ArtifactDirection::kDownload, 77);
  metrics.ObserveRpc("/bert.v1.AgentService/ReportStage", 0, 0.002);
  const std::string text = Text(metrics.registry());
  EXPECT_TRUE(HasLine(text, R"(bert_agent_info{agent_id="agent-7",version="0.1.1"} 1)")) << text;
  EXPECT_EQ(text.find(R"(version="0.1.0")"), std::string::npos);
  EXPECT_TRUE(HasLine(text, R"(bert_agent_pool_member{pool="train"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_agent_controller_connected 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_agent_heartbeats_total{result="error"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_agent_assignments_running{stage="prepare"} 0)"));
  EXPECT_TRUE(HasLine(text, R"(bert_agent_assignments_running{stage="tokenizer"} 1)"));
  EXPECT_TRUE(
      HasLine(text, R"(bert_agent_assignments_total{result="succeeded",stage="prepare"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_agent_stage_duration_seconds_sum{stage="prepare"} 12)"));
  EXPECT_TRUE(
      HasLine(text, R"(bert_agent_worker_exits_total{cause="out_of_memory",stage="pretrain"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(bert_agent_artifact_bytes_total{direction="download"} 77)"));
  EXPECT_TRUE(
      HasLine(text, R"(bert_agent_grpc_client_requests_total{code="OK",method="ReportStage"} 1)"));
}

TEST(AgentMetricsTest, JobSeriesGoAfterTheLastAssignmentOfTheJobPlusRetention) {
  AgentMetrics metrics(absl::Minutes(5));
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  metrics.OnAssignmentStarted("job-1", v1::PREPARE);
  metrics.OnAssignmentStarted("job-1", v1::PREPARE);  // two shards on this agent
  EXPECT_TRUE(metrics.jobs().SetMetric("job-1", "train/loss", 3.0, 1));
  metrics.OnAssignmentFinished("job-1", v1::PREPARE, v1::SUCCEEDED, 1, t0);
  metrics.jobs().ExpireFinishedJobs(t0 + absl::Minutes(60));
  EXPECT_EQ(metrics.jobs().JobCount(), 1u) << "expired while a shard of the job still runs";
  metrics.OnAssignmentFinished("job-1", v1::PREPARE, v1::SUCCEEDED, 1, t0 + absl::Minutes(60));
  metrics.jobs().ExpireFinishedJobs(t0 + absl::Minutes(64));
  EXPECT_EQ(metrics.jobs().JobCount(), 1u);
  metrics.jobs().ExpireFinishedJobs(t0 + absl::Minutes(65));
  EXPECT_EQ(metrics.jobs().JobCount(), 0u);
  EXPECT_EQ(Text(metrics.registry()).find("job_id="), std::string::npos);
}

TEST(MetricsExposerTest, ServesMetricsOverLoopbackHttp) {
  ControllerMetrics controller;
  controller.SetStoreSizeBytes(4096);
  controller.SetJobMetric("job-http", "train/loss", 3.5, 10);
  auto exposer = MetricsExposer::Start("127.0.0.1:0", {controller.registry()});
  ASSERT_TRUE(exposer.ok()) << exposer.status();
  ASSERT_GT((*exposer)->port(), 0);
  testing::HttpResponse response = testing::HttpGet((*exposer)->port(), "/metrics");
  ASSERT_EQ(response.status, 200);
  EXPECT_TRUE(HasLine(response.body, "bert_controller_store_size_bytes 4096")) << response.body;
  EXPECT_TRUE(HasLine(response.body, R"(bert_controller_job_train_loss{job_id="job-http"} 3.5)"));
  EXPECT_NE(response.body.find("# TYPE bert_controller_artifact_bytes_total counter"),
            std::string::npos);
  // Updates show in the next scrape.
  controller.SetStoreSizeBytes(8192);
  response = testing::HttpGet((*exposer)->port(), "/metrics");
  EXPECT_TRUE(HasLine(response.body, "bert_controller_store_size_bytes 8192"));
  // Only /metrics is served.
  EXPECT_EQ(testing::HttpGet((*exposer)->port(), "/other").status, 404);
}

TEST(MetricsExposerTest, BadAddressesAreClearErrors) {
  auto registry = std::make_shared<prometheus::Registry>();
  for (const char* bad : {"", "localhost", "127.0.0.1:", "127.0.0.1:99999", ":9464", "1.2.3.4:x"}) {
    auto exposer = MetricsExposer::Start(bad, {registry});
    ASSERT_FALSE(exposer.ok()) << bad;
    EXPECT_EQ(exposer.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(exposer.status().message().find("--metrics-listen"), std::string::npos);
  }
  // A port already taken is Unavailable, not a crash.
  auto first = MetricsExposer::Start("127.0.0.1:0", {registry});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsExposer::Start("127.0.0.1:" + std::to_string((*first)->port()), {registry});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

}  // namespace
}  // namespace bert::metrics
