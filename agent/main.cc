// bert-agent: runs stages for bertd, or one stage locally (run-stage).
//
//   bert-agent --server HOST:PORT --pools cpu,train --work-dir DIR [--token-file F]
//              [--tls-ca PEM] [--id ID] [--shared-fs] [--worker PATH]
//              [--worker-front auto|native|python] [--python-worker PATH]
//              [--metrics-listen HOST:PORT [--metrics-job-retention 30m]]
//   bert-agent run-stage STAGE --spec job.yaml --work-dir DIR [--shard I --shards N]
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/run_stage_command.h"
#include "metrics/agent_metrics.h"
#include "metrics/metrics_exposer.h"

namespace {

// `name` beside this executable (as the build's bin/ and the images install them).
std::string BesideSelf(const std::string& name) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return name;
  return (self.parent_path() / name).string();
}

std::string DefaultWorkerPath() { return BesideSelf("bert-worker"); }

// SIGINT/SIGTERM are blocked in every thread and taken here, once, by sigwait.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  template <typename F>
  void Start(F on_signal) {
    thread_ = std::thread([this, on_signal] {
      int sig = 0;
      if (sigwait(&set_, &sig) == 0) on_signal(sig);
    });
    thread_.detach();
  }

 private:
  sigset_t set_;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  SignalWatcher signals;  // before any thread starts
  CLI::App app{"bert-agent: runs bertd's stages on this host"};
  app.set_version_flag("--version", "bert-agent 0.1.0");

  bert::agent::AgentOptions o;
  o.worker_path = DefaultWorkerPath();
  o.python_worker_path = BesideSelf("bert-worker-py");
  std::string pools = "cpu,train";
  std::vector<std::string> labels;
  int64_t cancel_grace_ms = 10000;
  std::string metrics_listen;
  std::string job_retention = "30m";
  app.add_option("--server", o.server, "bertd address, host:port");
  app.add_option("--pools", pools, "host pools served, comma-separated")->capture_default_str();
  app.add_option("--label", labels, "KEY=VALUE label (repeatable)");
  app.add_option("--work-dir", o.work_dir, "private working directory");
  std::string token_file;
  app.add_option("--token", o.token,
                 "bearer token for bertd (visible to local users in ps: prefer --token-file)");
  app.add_option("--token-file", token_file, "file holding the bearer token for bertd");
  app.add_option("--tls-ca", o.tls_ca, "PEM file of the CA that signed bertd's certificate");
  app.add_option("--id", o.id, "agent id (default: persisted, or hostname-pools)");
  app.add_flag("--shared-fs", o.shared_fs, "this host sees bertd's artifact root as a local path");
  app.add_option("--worker", o.worker_path, "bert-worker binary")->capture_default_str();
  app.add_option("--worker-front", o.worker_front,
                 "who runs pretrain/export: auto (python for hpu), native (bert-worker) or python")
      ->check(CLI::IsMember({"auto", "native", "python"}))
      ->capture_default_str();
  app.add_option("--python-worker", o.python_worker_path,
                 "bert-worker-py, the engine's Python front (docs/gaudi.md)")
      ->capture_default_str();
  app.add_option("--accelerator", o.accelerator, "auto, cpu, cuda or hpu")->capture_default_str();
  app.add_option("--address", o.address, "address other agents reach this host at");
  app.add_option("--threads", o.threads, "threads per stage (0 = all cores)");
  app.add_option("--slots", o.slots, "assignments run at once")->capture_default_str();
  app.add_option("--cancel-grace-ms", cancel_grace_ms, "SIGTERM to SIGKILL grace for a worker")
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "HOST:PORT to serve Prometheus /metrics on (e.g. 0.0.0.0:9465)");
  app.add_option("--data-root", o.data_roots,
                 "directory corpus inputs may be read from (repeatable; none: anywhere)");
  app.add_flag("--spec-dir-root", o.spec_dir_root,
               "also read inputs under the directory each job's spec was submitted from "
               "(single-user hosts: the submitter chooses it)");
  app.add_option("--metrics-job-retention", job_retention,
                 "how long a finished job's per-job series stay in /metrics (e.g. 30m, 2h)")
      ->capture_default_str();

  bert::agent::RunStageOptions rs;
  CLI::App* run_stage = app.add_subcommand("run-stage", "run one stage locally, without bertd");
  run_stage->add_option("stage", rs.stage, "prepare, tokenizer, preprocess, pretrain or export")
      ->required();
  run_stage->add_option("--spec", rs.spec_path, "job spec YAML")->required();
  run_stage->add_option("--work-dir", rs.work_dir, "where outputs go (and earlier ones are)")
      ->required();
  run_stage->add_option("--shard", rs.shard, "this piece's index (shards = the join)");
  run_stage->add_option("--shards", rs.shards, "pieces the stage fans out to");
  run_stage->add_option("--worker", rs.worker_path, "bert-worker binary");
  run_stage->add_option("--worker-front", rs.worker_front,
                        "auto (python for hpu), native or python")
      ->check(CLI::IsMember({"auto", "native", "python"}));
  run_stage->add_option("--python-worker", rs.python_worker_path, "bert-worker-py");
  run_stage->add_option("--threads", rs.threads, "threads (0 = all cores)");
  run_stage->add_option("--device", rs.device, "cpu, cuda or hpu");
  run_stage->add_option("--local-ranks", rs.local_ranks,
                        "pretrain: ranks on this host, one per device (Gloo on CPU)")
      ->check(CLI::Range(1, 64));
  run_stage->add_option("--data-root", rs.data_roots,
                        "directory corpus inputs may be read from (repeatable; none: anywhere)");
  CLI11_PARSE(app, argc, argv);
  for (std::vector<std::string>* roots : {&o.data_roots, &rs.data_roots}) {
    for (std::string& root : *roots) {
      std::error_code ec;
      if (!std::filesystem::is_directory(root, ec)) {
        fprintf(stderr, "bert-agent: --data-root %s: not a directory\n", root.c_str());
        return 2;
      }
      root = std::filesystem::absolute(root).lexically_normal().string();
    }
  }

  if (run_stage->parsed()) {
    if (rs.worker_path.empty()) rs.worker_path = o.worker_path;
    if (rs.python_worker_path.empty()) rs.python_worker_path = o.python_worker_path;
    static std::atomic<bool> cancel{false};
    signals.Start([](int) { cancel = true; });
    return bert::agent::RunStageCommand(rs, cancel);
  }

  if (o.server.empty() || o.work_dir.empty()) {
    fprintf(stderr, "bert-agent: --server and --work-dir are required (or use run-stage)\n");
    return 2;
  }
  if (!token_file.empty()) {
    if (!o.token.empty()) {
      fprintf(stderr, "bert-agent: --token and --token-file go alone, not together\n");
      return 2;
    }
    std::ifstream in(token_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    o.token = std::string(absl::StripAsciiWhitespace(text));
    if (!in.good() && !in.eof()) o.token.clear();
    if (o.token.empty()) {
      fprintf(stderr, "bert-agent: --token-file %s: cannot read a token from it\n",
              token_file.c_str());
      return 2;
    }
  }
  o.pools.clear();
  for (absl::string_view p : absl::StrSplit(pools, ',', absl::SkipWhitespace())) {
    o.pools.emplace_back(p);
  }
  for (const std::string& l : labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    if (kv.first.empty()) {
      fprintf(stderr, "bert-agent: --label wants KEY=VALUE, got '%s'\n", l.c_str());
      return 2;
    }
    o.labels[kv.first] = kv.second;
  }
  o.cancel_grace = std::chrono::milliseconds(cancel_grace_ms);
  o.work_dir = std::filesystem::absolute(o.work_dir).string();
  if (o.data_roots.empty() && !o.spec_dir_root) {
    fprintf(stderr,
            "bert-agent: warning: no --data-root: job specs may name any file this user can "
            "read as corpus input\n");
  }

  // Metrics: this process never loads libtorch (bert-worker children do), so
  // prometheus-cpp's HTTP server can run here.
  absl::Duration retention;
  if (!absl::ParseDuration(job_retention, &retention) || retention < absl::ZeroDuration()) {
    fprintf(stderr,
            "bert-agent: --metrics-job-retention \"%s\": expected a duration such as 30m, 2h "
            "or 90s\n",
            job_retention.c_str());
    return 2;
  }
  std::unique_ptr<bert::metrics::AgentMetrics> metrics;
  std::unique_ptr<bert::metrics::MetricsExposer> exposer;
  if (!metrics_listen.empty()) {
    metrics = std::make_unique<bert::metrics::AgentMetrics>(retention);
    auto started = bert::metrics::MetricsExposer::Start(metrics_listen, {metrics->registry()});
    if (!started.ok()) {
      fprintf(stderr, "bert-agent: %s\n", started.status().ToString().c_str());
      return 1;
    }
    exposer = std::move(started).value();
    o.metrics = metrics.get();
    fprintf(stderr, "bert-agent: serving metrics on port %d\n", exposer->port());
  }
  bert::agent::Agent agent(o);
  signals.Start([&agent](int) { agent.Stop(); });
  absl::Status s = agent.Run();
  if (!s.ok()) {
    fprintf(stderr, "bert-agent: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
