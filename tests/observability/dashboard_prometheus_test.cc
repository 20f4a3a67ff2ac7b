// The Grafana dashboard against a real Prometheus: starts bertd and a
// bert-agent with --metrics-listen on loopback, a Prometheus server (Debian's
// `prometheus`) scraping both every second, runs a small job through every
// stage, then checks that EVERY PromQL expression of
// deploy/grafana/bertd-dashboard.json returns data (a non-empty result with
// at least one number that is not NaN) through Prometheus's HTTP API.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bert/v1/job_service.grpc.pb.h"
#include "common/loopback_port.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "metrics/agent_metrics.h"
#include "metrics/controller_metrics.h"
#include "metrics/metrics_exposer.h"
#include "nlohmann/json.hpp"
#include "tests/metrics/http_get.h"
#include "tests/testing/child_process.h"
#include "tests/testing/grafana_dashboard.h"
#include "tests/testing/temp_dir.h"

namespace bert {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::HttpGet;
using testing::UrlEncode;

fs::path SourceDir() {
  const char* source = std::getenv("BERT_SOURCE_DIR");
  return source != nullptr ? fs::path(source) : fs::path(BERT_TEST_SOURCE_DIR);
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A free loopback port, or -1 (the servers given it then fail to start, and
// the test says so).
int FreePort() { return FreeLoopbackPort().value_or(-1); }

template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return predicate();
}

std::string HelpText(const fs::path& binary) {
  const fs::path out = fs::temp_directory_path() / ("obs_help_" + std::to_string(getpid()));
  (void)std::system((binary.string() + " --help > " + out.string() + " 2>&1").c_str());
  std::string help = ReadAll(out);
  fs::remove(out);
  return help;
}

// Empty when `expr` returns data; otherwise why not.
std::string CheckQuery(int prometheus_port, const std::string& expr) {
  testing::HttpResponse response =
      HttpGet(prometheus_port, "/api/v1/query?query=" + UrlEncode(expr));
  if (response.status != 200) {
    return "HTTP " + std::to_string(response.status) + ": " + response.body;
  }
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_discarded() || body.value("status", "") != "success") return response.body;
  const auto& result = body["data"]["result"];
  if (!result.is_array() || result.empty()) return "no series";
  for (const auto& series : result) {
    const std::string value = series["value"][1].get<std::string>();
    if (value != "NaN") return "";
  }
  return "only NaN values: " + result.dump().substr(0, 300);
}

class DashboardPrometheusTest : public ::testing::Test {
 protected:
  void TearDown() override { children_.clear(); }  // stops them, before tmp_ goes
  ChildProcess& Start(const std::vector<std::string>& argv, const std::string& log_name) {
    children_.push_back(std::make_unique<ChildProcess>(argv, (tmp_ / log_name).string()));
    EXPECT_TRUE(children_.back()->started()) << children_.back()->error();
    return *children_.back();
  }
  std::string Logs() {
    std::string logs;
    for (const char* name : {"bertd.log", "agent.log", "prometheus.log"}) {
      logs += std::string("\n--- ") + name + " (tail) ---\n" + [&] {
        std::string text = ReadAll(tmp_ / name);
        return text.size() > 2500 ? text.substr(text.size() - 2500) : text;
      }();
    }
    return logs;
  }

  // Starts Prometheus scraping the two ports every second; returns its port
  // once it is ready, or -1.
  int StartPrometheus(int bertd_metrics, int agent_metrics) {
    const int port = FreePort();
    std::ofstream(tmp_ / "prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n"
        << "  - job_name: bertd\n    static_configs:\n      - targets: ['127.0.0.1:"
        << bertd_metrics << "']\n"
        << "  - job_name: bert-agent\n    static_configs:\n      - targets: ['127.0.0.1:"
        << agent_metrics << "']\n";
    Start({"/usr/bin/prometheus", "--config.file=" + (tmp_ / "prometheus.yml").string(),
           "--storage.tsdb.path=" + (tmp_ / "tsdb").string(),
           "--web.listen-address=127.0.0.1:" + std::to_string(port)},
          "prometheus.log");
    const bool ready =
        WaitFor([&] { return HttpGet(port, "/-/ready").status == 200; }, std::chrono::seconds(30));
    return ready ? port : -1;
  }
  // Every dashboard expression that returns no data, with the reason.
  std::string FailingExpressions(int prometheus_port, int* total) {
    // The rate window spans the whole test.
  const std::vector<std::string> expressions = testing::DashboardExpressions(
      (SourceDir() / "deploy/grafana/bertd-dashboard.json").string(), "10m");
    *total = static_cast<int>(expressions.size());
    std::string failures;
    for (const std::string& expr : expressions) {
      const std::string why = CheckQuery(prometheus_port, expr);
      if (!why.empty()) failures += "\n  " + expr + "\n    -> " + why;
    }
    return failures;
  }

  const testing::TempDir temp_dir_{"bert_obs_"};
  const fs::path tmp_ = temp_dir_.path();
  std::vector<std::unique_ptr<ChildProcess>> children_;
};

TEST_F(DashboardPrometheusTest, EveryDashboardExpressionReturnsData) {
  const char* bin_env = std::getenv("BERT_BIN_DIR");
  if (bin_env == nullptr) GTEST_SKIP() << "BERT_BIN_DIR is not set";
  const fs::path bin(bin_env);
  for (const fs::path& needed :
       {bin / "bertd", bin / "bert-agent", bin / "bert-worker", fs::path("/usr/bin/prometheus")}) {
    if (!fs::exists(needed)) GTEST_SKIP() << needed << " is missing (not built or not installed)";
  }
  for (const char* binary : {"bertd", "bert-agent"}) {
    if (HelpText(bin / binary).find("--metrics-listen") == std::string::npos) {
      GTEST_SKIP() << binary << " has no --metrics-listen flag yet: it does not expose "
                   << "Prometheus metrics, so there is nothing to scrape";
    }
  }
  const fs::path corpus_source = SourceDir() / "tests/engine/testdata/brown_excerpt.txt";
  if (!fs::exists(corpus_source)) GTEST_SKIP() << corpus_source << " is missing";

  // A small English corpus: the first 3,000 lines of the Brown excerpt.
  {
    std::ifstream in(corpus_source);
    std::ofstream out(tmp_ / "corpus.txt");
    std::string line;
    for (int i = 0; i < 3000 && std::getline(in, line); ++i) out << line << "\n";
  }

  const int grpc_port = FreePort(), bertd_metrics = FreePort(), agent_metrics = FreePort();
  const std::string server = "127.0.0.1:" + std::to_string(grpc_port);
  Start({(bin / "bertd").string(), "--listen", server, "--data-dir", (tmp_ / "bertd").string(),
         "--metrics-listen", "127.0.0.1:" + std::to_string(bertd_metrics)},
        "bertd.log");
  ASSERT_TRUE(WaitFor([&] { return HttpGet(bertd_metrics, "/metrics").status == 200; },
                      std::chrono::seconds(20)))
      << "bertd's /metrics did not come up" << Logs();
  Start({(bin / "bert-agent").string(), "--server", server, "--pools", "cpu,train", "--work-dir",
         (tmp_ / "agent").string(), "--worker", (bin / "bert-worker").string(), "--threads", "2",
         "--metrics-listen", "127.0.0.1:" + std::to_string(agent_metrics)},
        "agent.log");
  ASSERT_TRUE(WaitFor([&] { return HttpGet(agent_metrics, "/metrics").status == 200; },
                      std::chrono::seconds(20)))
      << "bert-agent's /metrics did not come up" << Logs();
  const int prometheus_port = StartPrometheus(bertd_metrics, agent_metrics);
  ASSERT_GT(prometheus_port, 0) << "Prometheus did not become ready" << Logs();
  // rate() sees the job's counts only if a sample from before the job exists:
  // wait for the first scrape of both targets (ready is not scraped).
  ASSERT_TRUE(WaitFor(
      [&] {
        return CheckQuery(prometheus_port, "up{job=\"bertd\"} == 1") == "" &&
               CheckQuery(prometheus_port, "up{job=\"bert-agent\"} == 1") == "";
      },
      std::chrono::seconds(30)))
      << "Prometheus did not scrape bertd and the agent" << Logs();

  // A small job through every stage.
  const std::string spec = R"(name: observability-test
corpus:
  sources:
    - paths: [corpus.txt]
      format: text
tokenizer:
  vocab_size: 1000
preprocess:
  max_seq_length: 64
  validation_fraction: 0.05
model:
  preset: bert-tiny
training:
  max_steps: 30
  per_device_batch_size: 8
  learning_rate: 0.001
  logging_steps: 2
  eval_steps: 15
  save_steps: 15
resources:
  prep_pool: cpu
  train_pool: train
  accelerator: cpu
output:
  dir: )" + (tmp_ / "model").string() +
                           "\n";
  auto channel = grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
  auto stub = v1::JobService::NewStub(channel);
  v1::SubmitJobRequest submit;
  submit.set_spec_yaml(spec);
  submit.set_base_dir(tmp_.string());
  v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::Status status = stub->SubmitJob(&context, submit, &submitted);
    ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message() << Logs();
  }
  const std::string job_id = submitted.job().id();
  v1::Job job;
  const bool finished = WaitFor(
      [&] {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        v1::GetJobRequest get;
        get.set_job_id(job_id);
        if (!stub->GetJob(&context, get, &job).ok()) return false;
        return job.state() == v1::SUCCEEDED || job.state() == v1::FAILED ||
               job.state() == v1::CANCELLED;
      },
      std::chrono::seconds(180));
  ASSERT_TRUE(finished) << "job " << job_id << " still " << v1::State_Name(job.state())
                        << " after 180 s" << Logs();
  ASSERT_EQ(job.state(), v1::SUCCEEDED)
      << v1::FailureCause_Name(job.failure_cause()) << ": " << job.failure_message() << Logs();

  // Let Prometheus scrape the final values.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(CheckQuery(prometheus_port, "up{job=\"bertd\"} == 1"), "");
  EXPECT_EQ(CheckQuery(prometheus_port, "up{job=\"bert-agent\"} == 1"), "");
  // What the agent and the controller's feed add beyond the dashboard: the
  // agent's own view of the job, and every finished stage reading complete.
  for (const char* expr :
       {"bert_agent_assignments_total{stage=\"pretrain\",result=\"succeeded\"} >= 1",
        "bert_agent_job_train_loss > 0", "bert_agent_controller_connected == 1",
        "sum(bert_agent_grpc_client_requests_total{method=\"ReportStage\",code=\"OK\"}) > 0",
        "bert_controller_job_stage_progress_ratio{stage=\"pretrain\"} == 1",
        "bert_controller_agents{health=\"healthy\",pool=\"train\"} == 1",
        "bert_controller_store_size_bytes > 0"}) {
    EXPECT_EQ(CheckQuery(prometheus_port, expr), "") << expr;
  }

  int total = 0;
  const std::string failures = FailingExpressions(prometheus_port, &total);
  EXPECT_GE(total, 20);
  EXPECT_EQ(failures, "") << "dashboard expressions that returned no data:" << failures;
}

// The same check with the metric classes driven in-process the way bertd and
// an agent drive them during a job (no bertd needed): the dashboard's queries
// and the exported names agree, through a real exposer and a real Prometheus.
TEST_F(DashboardPrometheusTest, DashboardWorksOnMetricsOfASimulatedJob) {
  if (!fs::exists("/usr/bin/prometheus")) GTEST_SKIP() << "/usr/bin/prometheus is not installed";
  metrics::ControllerMetrics controller;
  metrics::AgentMetrics agent;
  auto bertd_exposer = metrics::MetricsExposer::Start("127.0.0.1:0", {controller.registry()});
  auto agent_exposer = metrics::MetricsExposer::Start("127.0.0.1:0", {agent.registry()});
  ASSERT_TRUE(bertd_exposer.ok() && agent_exposer.ok());
  controller.SetAgents("cpu", true, 1);
  controller.SetAgents("train", true, 1);
  agent.SetInfo("agent-1", "0.1.0", {"cpu", "train"});
  agent.SetConnected(true);
  controller.SetQueueLength("cpu", 0);
  controller.SetQueueLength("train", 0);
  const int prometheus_port = StartPrometheus((*bertd_exposer)->port(), (*agent_exposer)->port());
  ASSERT_GT(prometheus_port, 0) << "Prometheus did not become ready" << Logs();

  // One job, every stage, spread over a few scrapes.
  const std::string job = "j-simulated";
  controller.OnJobStateChanged(v1::STATE_UNSPECIFIED, v1::QUEUED);
  controller.OnJobStateChanged(v1::QUEUED, v1::RUNNING);
  const v1::StageKind stages[] = {v1::PREPARE, v1::TOKENIZER, v1::PREPROCESS, v1::PRETRAIN,
                                  v1::EXPORT};
  for (v1::StageKind stage : stages) {
    controller.OnStageStateChanged(stage, v1::STATE_UNSPECIFIED, v1::QUEUED);
  }
  int64_t step = 0;
  for (v1::StageKind stage : stages) {
    const std::string pool = stage == v1::PRETRAIN || stage == v1::EXPORT ? "train" : "cpu";
    controller.SetQueueLength(pool, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    controller.ObserveQueueWait(stage, 0.6);
    controller.SetQueueLength(pool, 0);
    controller.OnStageStateChanged(stage, v1::QUEUED, v1::RUNNING);
    agent.OnAssignmentStarted(job, stage);
    for (int tick = 1; tick <= 4; ++tick) {
      v1::Progress progress;
      progress.set_done(tick * 25);
      progress.set_total(100);
      progress.set_unit(stage == v1::PRETRAIN ? "steps" : "lines");
      progress.set_rate_per_second(100.0 * tick);
      progress.set_eta_seconds(4 - tick);
      controller.jobs().SetStageProgress(job, stage, progress);
      agent.jobs().SetStageProgress(job, stage, progress);
      if (stage == v1::PRETRAIN) {
        step += 10;
        for (const auto& [name, value] :
             std::vector<std::pair<std::string, double>>{{"train/loss", 9.0 - tick},
                                                         {"train/learning_rate", 1e-3},
                                                         {"train/grad_norm", 2.0},
                                                         {"train/tokens_per_second", 5000},
                                                         {"train/mfu", 0.05},
                                                         {"eval/loss", 8.5 - tick},
                                                         {"eval/accuracy", 0.02 * tick}}) {
          controller.SetJobMetric(job, name, value, step);
        }
      }
      controller.ObserveRpc("/bert.v1.AgentService/ReportStage", 0, 0.002);
      controller.ObserveRpc("/bert.v1.AgentService/Heartbeat", 0, 0.001);
      agent.ObserveRpc("/bert.v1.AgentService/ReportStage", 0, 0.003);
      agent.OnHeartbeat(true);
      controller.ObserveStoreWrite(0.001);
      controller.SetStoreSizeBytes(1 << 20);
      controller.AddArtifactBytes(metrics::ArtifactDirection::kUpload, 1000);
      agent.AddArtifactBytes(metrics::ArtifactDirection::kUpload, 1000);
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
    controller.OnStageStateChanged(stage, v1::RUNNING, v1::SUCCEEDED);
    controller.ObserveStageDuration(stage, v1::SUCCEEDED, 1.6);
    agent.OnAssignmentFinished(job, stage, v1::SUCCEEDED, 1.6, absl::Now());
  }
  controller.OnJobStateChanged(v1::RUNNING, v1::SUCCEEDED);
  controller.jobs().OnJobFinished(job, absl::Now());
  std::this_thread::sleep_for(std::chrono::seconds(3));

  int total = 0;
  const std::string failures = FailingExpressions(prometheus_port, &total);
  EXPECT_GE(total, 20);
  EXPECT_EQ(failures, "") << "dashboard expressions that returned no data:" << failures << Logs();
}

}  // namespace
}  // namespace bert
