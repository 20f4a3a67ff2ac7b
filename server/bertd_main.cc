// bertd: the controller daemon.
//
//   bertd --listen 127.0.0.1:7070 --data-dir /var/lib/bertd [--local-agent]
//         [--tokens-file F] [--tls-cert C --tls-key K [--tls-client-ca CA]]
//         [--metrics-listen 127.0.0.1:9464 [--metrics-job-retention 30m]]
//
// Runs until SIGINT or SIGTERM, then stops accepting calls, stops the local
// agent if any, and exits. All state is in --data-dir; a restart (even after
// kill -9) picks up every job where it was.
#include <openssl/rand.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <filesystem>
#include <iostream>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/atomic_file.h"
#include "metrics/controller_metrics.h"
#include "metrics/metrics_exposer.h"
#include "server/controller.h"
#include "server/controller_metrics_feed.h"
#include "server/local_agent.h"

namespace {

std::string RandomToken() {
  unsigned char bytes[24];
  RAND_bytes(bytes, sizeof(bytes));
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

int Run(int argc, char** argv) {
  bert::server::ControllerOptions options;
  bool local_agent = false;
  bool no_check_paths = false;
  std::string agent_path = bert::server::LocalAgent::DefaultAgentPath();
  std::vector<std::string> agent_args;
  std::vector<std::string> agent_data_roots;
  std::string metrics_listen;
  std::string job_retention = "30m";
  std::string port_file;
  int64_t lease_ttl_ms = 15000;
  int64_t heartbeat_ms = 5000;
  int64_t restart_grace_ms = 30000;
  std::string finished_job_retention = "0";
  std::string collect_interval = "10m";

  CLI::App app{"bertd: the BERT pre-training controller"};
  app.add_option("--listen", options.listen, "HOST:PORT to serve gRPC on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--data-dir", options.data_dir, "RocksDB state and artifacts")->required();
  app.add_option("--tokens-file", options.tokens_file,
                 "bearer tokens: 'TOKEN ROLE SUBJECT' per line");
  app.add_option("--tls-cert", options.tls_cert, "server certificate (PEM)");
  app.add_option("--tls-key", options.tls_key, "server private key (PEM)");
  app.add_option("--tls-client-ca", options.tls_client_ca,
                 "CA (PEM) for client certificates; agents must then use mutual TLS");
  app.add_flag("--allow-insecure", options.allow_insecure,
               "serve a non-loopback address without TLS or tokens");
  app.add_flag("--local-agent", local_agent, "run a bert-agent child serving every pool");
  app.add_option("--agent-path", agent_path, "bert-agent binary for --local-agent")
      ->capture_default_str();
  app.add_option("--agent-arg", agent_args, "extra argument for the local agent (repeatable)");
  app.add_option("--local-agent-data-root", agent_data_roots,
                 "directory the local agent may read job inputs from (repeatable; default: "
                 "each job's spec directory, or DATA/inputs with --tokens-file)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--metrics-listen", metrics_listen, "HOST:PORT for Prometheus /metrics");
  app.add_option("--metrics-job-retention", job_retention,
                 "how long a finished job's per-job series stay in /metrics (e.g. 30m, 2h)")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound gRPC port here once serving");
  app.add_option("--lease-ttl-ms", lease_ttl_ms, "agent lease without heartbeats")
      ->capture_default_str();
  app.add_option("--heartbeat-interval-ms", heartbeat_ms, "heartbeat interval told to agents")
      ->capture_default_str();
  app.add_option(
         "--restart-grace-ms", restart_grace_ms,
         "after a restart, how long agents have to reconnect before their work is re-queued "
         "(at least --lease-ttl-ms)")
      ->capture_default_str();
  app.add_option("--shared-artifact-root", options.shared_artifact_roots,
                 "absolute directory, shared with agents, where they may leave file:// artifacts "
                 "under <dir>/<job>/<stage>/ (repeatable; data-dir/artifacts always is one)");
  app.add_option("--shared-output-root", options.shared_output_root,
                 "absolute directory the export agents write models under: a spec's output.dir "
                 "under it is written there; any other output.dir is pulled by bertctl submit "
                 "--watch to the submitting machine");
  app.add_option("--finished-job-retention", finished_job_retention,
                 "delete a finished job (records and artifact files) this long after it "
                 "finished, e.g. 720h; 0: keep it until `bertctl delete`")
      ->capture_default_str();
  app.add_option("--collect-interval", collect_interval,
                 "how often the deletion collector runs (it also runs at startup)")
      ->capture_default_str();
  app.add_option("--shared-input-root", options.shared_input_roots,
                 "absolute directory every data-prep agent reads at the same path: bertctl "
                 "submit uploads no corpus file under it (repeatable)");
  app.add_option("--max-upload-bytes", options.max_upload_bytes,
                 "largest corpus file bertctl submit may upload (UploadInput); 0 refuses uploads")
      ->capture_default_str();
  app.add_flag("--no-check-paths", no_check_paths,
               "do not require spec paths to exist on this host (agents elsewhere read them)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (lease_ttl_ms < 100 || heartbeat_ms < 10 || heartbeat_ms >= lease_ttl_ms) {
    std::cerr
        << "bertd: need 10 <= --heartbeat-interval-ms < --lease-ttl-ms and --lease-ttl-ms >= 100\n";
    return 2;
  }
  absl::Duration retention;
  if (!absl::ParseDuration(job_retention, &retention) || retention < absl::ZeroDuration()) {
    std::cerr << "bertd: --metrics-job-retention \"" << job_retention
              << "\": expected a duration such as 30m, 2h or 90s\n";
    return 2;
  }
  for (auto [flag, text, out] :
       {std::tuple{"--finished-job-retention", &finished_job_retention, &options.finished_job_retention},
        std::tuple{"--collect-interval", &collect_interval, &options.collect_interval}}) {
    if (!absl::ParseDuration(*text, out) || *out < absl::ZeroDuration() ||
        (out == &options.collect_interval && *out < absl::Seconds(1))) {
      std::cerr << "bertd: " << flag << " \"" << *text
                << "\": expected a duration such as 720h, 10m or 0 (at least 1s for "
                   "--collect-interval)\n";
      return 2;
    }
  }
  options.lease_ttl = absl::Milliseconds(lease_ttl_ms);
  options.heartbeat_interval = absl::Milliseconds(heartbeat_ms);
  options.restart_grace = absl::Milliseconds(restart_grace_ms);
  options.check_spec_paths = !no_check_paths;
  if (local_agent) {
    // What the embedded agent reads needs no upload: its data roots, or (the
    // single-user default below) the submitter's own spec directory.
    for (const std::string& root : agent_data_roots) {
      options.shared_input_roots.push_back(std::filesystem::absolute(root).lexically_normal());
    }
    if (agent_data_roots.empty() && !options.tokens_file.empty()) {
      options.shared_input_roots.push_back(
          std::filesystem::absolute(options.data_dir + "/inputs").lexically_normal());
    }
    options.spec_dir_shared = agent_data_roots.empty() && options.tokens_file.empty();
  }
  std::string agent_token;
  if (local_agent && !options.tokens_file.empty()) {
    agent_token = RandomToken();
    // Bound to the local agent's id, like every agent token.
    options.extra_tokens.push_back(
        {agent_token, {bert::server::kLocalAgentId, bert::server::Role::kAgent}});
  }

  // A file size limit (RLIMIT_FSIZE) fails the write (EFBIG) instead of killing bertd.
  signal(SIGXFSZ, SIG_IGN);
  // Signals are taken by sigwait below, not by whichever thread they hit.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto metrics = std::make_shared<bert::metrics::ControllerMetrics>(retention);
  std::unique_ptr<bert::metrics::MetricsExposer> exposer;
  if (!metrics_listen.empty()) {
    auto started = bert::metrics::MetricsExposer::Start(metrics_listen, {metrics->registry()});
    if (!started.ok()) {
      std::cerr << "bertd: --metrics-listen: " << started.status() << "\n";
      return 1;
    }
    exposer = std::move(started).value();
  }
  auto controller = bert::server::Controller::Start(options, metrics);
  if (!controller.ok()) {
    std::cerr << "bertd: " << controller.status() << "\n";
    return 1;
  }
  // Progress, queues, agents, store size and per-job series lifetimes.
  bert::server::RealClock clock;
  std::unique_ptr<bert::server::ControllerMetricsFeed> feed;
  if (exposer) {
    bert::server::ControllerMetricsFeedOptions feed_options;
    feed_options.interval = absl::Seconds(1);
    feed_options.store_dir = options.data_dir + "/db";
    feed = std::make_unique<bert::server::ControllerMetricsFeed>(
        (*controller)->manager(), metrics.get(), &clock, feed_options);
    feed->Start();
  }
  const int port = (*controller)->port();
  std::cout << "bertd: serving on port " << port << " (data in " << options.data_dir << ")"
            << std::endl;
  if (!port_file.empty()) {
    absl::Status written = bert::WriteFileAtomically(port_file, std::to_string(port) + "\n");
    if (!written.ok()) std::cerr << "bertd: --port-file: " << written << "\n";
  }
  std::unique_ptr<bert::server::LocalAgent> agent;
  if (local_agent) {
    bert::server::LocalAgentOptions agent_options;
    agent_options.agent_path = agent_path;
    agent_options.server = absl::StrCat("127.0.0.1:", port);
    agent_options.work_dir = options.data_dir + "/local-agent";
    agent_options.token = agent_token;
    agent_options.extra_args = agent_args;
    // Where specs may point the embedded agent (docs/security.md): the
    // operator's roots; else, single-user (no tokens: whoever can submit owns
    // the machine), each job's spec directory; else DATA/inputs only.
    for (const std::string& root : agent_data_roots) {
      agent_options.data_roots.push_back(std::filesystem::absolute(root).lexically_normal());
    }
    if (agent_options.data_roots.empty() && options.tokens_file.empty()) {
      agent_options.spec_dir_root = true;
    } else if (agent_options.data_roots.empty()) {
      const std::string inputs = options.data_dir + "/inputs";
      std::error_code ec;
      std::filesystem::create_directories(inputs, ec);
      agent_options.data_roots.push_back(std::filesystem::absolute(inputs).lexically_normal());
      std::cout << "bertd: the local agent reads job inputs only under " << inputs
                << " (--local-agent-data-root to choose)" << std::endl;
    }
    auto started = bert::server::LocalAgent::Start(agent_options);
    if (!started.ok()) {
      std::cerr << "bertd: " << started.status() << "\n";
      if (feed) feed->Stop();
      (*controller)->Shutdown();
      return 1;
    }
    agent = std::move(started).value();
    std::cout << "bertd: local agent pid " << agent->pid() << std::endl;
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cout << "bertd: signal " << signal_number << ", shutting down" << std::endl;
  if (agent) agent->Stop();
  if (feed) feed->Stop();
  (*controller)->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
