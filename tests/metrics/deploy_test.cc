// Checks deploy/: systemd units pass `systemd-analyze verify` without a single
// diagnostic; every YAML and JSON file parses; the Kubernetes manifests hold
// what the deployment needs; the Prometheus config passes promtool; every
// PromQL expression of the Grafana dashboard parses (promtool) and names only
// metrics that ControllerMetrics/AgentMetrics export; the flags the units and
// manifests pass exist in the binaries' --help; make-tls.sh issues
// certificates that verify.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bert/v1/job_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "metrics/agent_metrics.h"
#include "metrics/controller_metrics.h"
#include "metrics/metrics_exposer.h"
#include "nlohmann/json.hpp"
#include "spec/job_spec.h"
#include "tests/testing/child_process.h"
#include "tests/testing/grafana_dashboard.h"
#include "tests/testing/port_file.h"
#include "tests/testing/temp_dir.h"
#include "yaml-cpp/yaml.h"

namespace bert::metrics {
namespace {

namespace fs = std::filesystem;

fs::path SourceDir() {
  const char* source = std::getenv("BERT_SOURCE_DIR");
  return source != nullptr ? fs::path(source) : fs::path(BERT_TEST_SOURCE_DIR);
}

fs::path DeployDir() { return SourceDir() / "deploy"; }

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool HaveProgram(const std::string& name) {
  return std::system(("command -v " + name + " > /dev/null 2>&1").c_str()) == 0;
}

// Runs `command` with stdout and stderr captured; returns the exit status.
int RunCommand(const std::string& command, std::string* output) {
  const fs::path out = fs::temp_directory_path() / ("deploy_test_out_" + std::to_string(getpid()));
  const int status = std::system((command + " > " + out.string() + " 2>&1").c_str());
  *output = ReadAll(out);
  fs::remove(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<fs::path> FilesWithExtensions(const std::set<std::string>& extensions) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(DeployDir())) {
    if (entry.is_regular_file() && extensions.count(entry.path().extension().string()) != 0) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(DeployTest, SystemdUnitsVerifyCleanly) {
  if (!HaveProgram("systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed";
  const bert::testing::TempDir dir("deploy_test_");
  // The units name /usr/local/bin binaries and /etc env files; point them at
  // stand-ins so verify checks the units themselves.
  fs::create_directories(dir.path() / "bin");
  for (const char* binary : {"bertd", "bert-agent", "bert-worker"}) {
    fs::create_symlink("/bin/true", dir.path() / "bin" / binary);
  }
  const std::map<std::string, std::string> env_files = {
      {"bertd.service", "/etc/bertd/bertd.env"},
      {"bert-agent.service", "/etc/bert-agent/bert-agent.env"}};
  std::string units;
  for (const auto& [unit, env_file] : env_files) {
    std::string text = ReadAll(DeployDir() / "systemd" / unit);
    ASSERT_FALSE(text.empty()) << unit;
    const std::string env_name = fs::path(env_file).filename().string();
    text = std::regex_replace(text, std::regex("/usr/local/bin/"), (dir.path() / "bin/").string());
    text = std::regex_replace(text, std::regex(env_file),
                              (DeployDir() / "config" / env_name).string());
    std::ofstream(dir.path() / unit) << text;
    units += " " + (dir.path() / unit).string();
  }
  std::string output;
  EXPECT_EQ(RunCommand("systemd-analyze verify" + units, &output), 0) << output;
  // verify exits 0 on unknown keys or bad values; any diagnostic is a defect.
  EXPECT_EQ(output, "") << output;
}

TEST(DeployTest, EveryYamlAndJsonFileParses) {
  int yaml_files = 0, json_files = 0;
  for (const fs::path& file : FilesWithExtensions({".yaml", ".yml"})) {
    try {
      std::vector<YAML::Node> docs = YAML::LoadAllFromFile(file.string());
      EXPECT_FALSE(docs.empty()) << file;
      ++yaml_files;
    } catch (const YAML::Exception& e) {
      ADD_FAILURE() << file << ": " << e.what();
    }
  }
  for (const fs::path& file : FilesWithExtensions({".json"})) {
    try {
      nlohmann::json parsed = nlohmann::json::parse(ReadAll(file));
      EXPECT_FALSE(parsed.empty()) << file;
    } catch (const nlohmann::json::exception& e) {
      ADD_FAILURE() << file << ": " << e.what();
    }
    ++json_files;
  }
  EXPECT_GE(yaml_files, 12);
  EXPECT_GE(json_files, 1);
}

// All Kubernetes objects of deploy/kubernetes, by "Kind/name".
std::map<std::string, YAML::Node> KubernetesObjects() {
  std::map<std::string, YAML::Node> objects;
  for (const auto& entry : fs::directory_iterator(DeployDir() / "kubernetes")) {
    if (entry.path().filename() == "kustomization.yaml") continue;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
      EXPECT_TRUE(doc["apiVersion"] && doc["kind"] && doc["metadata"]["name"]) << entry.path();
      const std::string key =
          doc["kind"].as<std::string>() + "/" + doc["metadata"]["name"].as<std::string>();
      EXPECT_EQ(objects.count(key), 0u) << "duplicate " << key;
      objects[key] = doc;
      if (doc["kind"].as<std::string>() != "Namespace") {
        EXPECT_EQ(doc["metadata"]["namespace"].as<std::string>(""), "bert") << key;
      }
    }
  }
  return objects;
}

std::string ResourceRequest(const YAML::Node& workload, const std::string& resource) {
  const YAML::Node limits =
      workload["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"];
  return limits[resource] ? limits[resource].as<std::string>() : "";
}

TEST(DeployTest, KubernetesManifestsHoldTheDeployment) {
  std::map<std::string, YAML::Node> objects = KubernetesObjects();
  for (const char* key :
       {"Namespace/bert", "StatefulSet/bertd", "Service/bertd", "Deployment/bert-agent-cpu",
        "Deployment/bert-agent-gaudi", "DaemonSet/bert-agent-cuda", "Secret/bertd-tls",
        "Secret/bertd-tokens", "Secret/bert-agent-token", "ServiceMonitor/bertd",
        "PodMonitor/bert-agent"}) {
    EXPECT_EQ(objects.count(key), 1u) << key;
  }
  const YAML::Node bertd = objects["StatefulSet/bertd"];
  EXPECT_EQ(bertd["spec"]["replicas"].as<int>(), 1);
  EXPECT_EQ(bertd["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as<std::string>(), "data");
  bool data_mounted = false;
  for (const YAML::Node& mount :
       bertd["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]) {
    if (mount["name"].as<std::string>() == "data") {
      data_mounted = mount["mountPath"].as<std::string>() == "/var/lib/bertd";
    }
  }
  EXPECT_TRUE(data_mounted) << "the RocksDB volume must be mounted at bertd's --data-dir";
  EXPECT_EQ(ResourceRequest(objects["Deployment/bert-agent-gaudi"], "habana.ai/gaudi"), "8");
  EXPECT_EQ(ResourceRequest(objects["DaemonSet/bert-agent-cuda"], "nvidia.com/gpu"), "8");

  // Every pod template: scrape annotations on a declared metrics port, and
  // every $(VAR) in args defined in env; every secret referenced exists.
  for (const auto& [key, object] : objects) {
    if (!object["spec"] || !object["spec"]["template"]) continue;
    const YAML::Node pod = object["spec"]["template"];
    const YAML::Node annotations = pod["metadata"]["annotations"];
    ASSERT_TRUE(annotations && annotations["prometheus.io/scrape"]) << key;
    const std::string port = annotations["prometheus.io/port"].as<std::string>();
    const YAML::Node container = pod["spec"]["containers"][0];
    bool port_declared = false;
    for (const YAML::Node& p : container["ports"]) {
      port_declared |= std::to_string(p["containerPort"].as<int>()) == port;
    }
    EXPECT_TRUE(port_declared) << key << " scrapes port " << port << " it does not declare";
    std::set<std::string> env;
    for (const YAML::Node& e : container["env"]) env.insert(e["name"].as<std::string>());
    std::regex var(R"(\$\(([A-Z_]+)\))");
    for (const YAML::Node& arg : container["args"]) {
      const std::string text = arg.as<std::string>();
      for (std::sregex_iterator it(text.begin(), text.end(), var), end; it != end; ++it) {
        EXPECT_EQ(env.count((*it)[1]), 1u) << key << ": " << text;
      }
    }
    for (const YAML::Node& e : container["env"]) {
      if (e["valueFrom"] && e["valueFrom"]["secretKeyRef"]) {
        const std::string secret = e["valueFrom"]["secretKeyRef"]["name"].as<std::string>();
        EXPECT_EQ(objects.count("Secret/" + secret), 1u) << key << " uses secret " << secret;
      }
    }
    for (const YAML::Node& volume : pod["spec"]["volumes"]) {
      if (volume["secret"]) {
        const std::string secret = volume["secret"]["secretName"].as<std::string>();
        EXPECT_EQ(objects.count("Secret/" + secret), 1u) << key << " mounts secret " << secret;
      }
    }
  }
  // The kustomization lists only files that exist.
  for (const YAML::Node& resource :
       YAML::LoadFile((DeployDir() / "kubernetes" / "kustomization.yaml").string())["resources"]) {
    EXPECT_TRUE(fs::exists(DeployDir() / "kubernetes" / resource.as<std::string>()))
        << resource.as<std::string>();
  }
}

TEST(DeployTest, PrometheusConfigAndRulesPassPromtool) {
  if (!HaveProgram("promtool")) GTEST_SKIP() << "promtool is not installed";
  std::string output;
  EXPECT_EQ(RunCommand(
                "promtool check config " + (DeployDir() / "prometheus" / "prometheus.yml").string(),
                &output),
            0)
      << output;
  EXPECT_EQ(RunCommand(
                "promtool check rules " + (DeployDir() / "prometheus" / "bert-alerts.yml").string(),
                &output),
            0)
      << output;
}

TEST(DeployTest, DashboardQueriesNameExportedMetricsAndParse) {
  const std::vector<std::string> expressions = bert::testing::DashboardExpressions(
      (DeployDir() / "grafana" / "bertd-dashboard.json").string(), "5m");
  ASSERT_GE(expressions.size(), 20u);

  // Names the classes export (populate the lazily created families first).
  ControllerMetrics controller;
  AgentMetrics agent;
  controller.ObserveRpc("SubmitJob", 0, 0.001);
  controller.SetQueueLength("cpu", 0);
  controller.SetUnschedulableJobs("cpu", 0);
  controller.SetAgents("cpu", true, 1);
  v1::Progress progress;
  progress.set_done(1);
  progress.set_total(2);
  progress.set_unit("steps");
  progress.set_eta_seconds(1);
  for (const char* name :
       {"train/loss", "train/learning_rate", "train/grad_norm", "train/tokens_per_second",
        "train/mfu", "train/epoch", "eval/loss", "eval/accuracy", "eval/perplexity"}) {
    controller.SetJobMetric("j", name, 1, 1);
  }
  controller.jobs().SetStageProgress("j", v1::PRETRAIN, progress);
  agent.ObserveRpc("Heartbeat", 0, 0.001);
  const std::string text = SerializeMetrics({controller.registry(), agent.registry()});
  std::set<std::string> exported;
  std::regex type_line(R"(# TYPE (\S+) (\S+))");
  for (std::sregex_iterator it(text.begin(), text.end(), type_line), end; it != end; ++it) {
    exported.insert((*it)[1]);
    if ((*it)[2] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        exported.insert((*it)[1].str() + suffix);
    }
  }
  std::regex metric_name(R"(\bbert_[a-z_]+)");
  std::set<std::string> used;
  for (const std::string& expr : expressions) {
    for (std::sregex_iterator it(expr.begin(), expr.end(), metric_name), end; it != end; ++it) {
      used.insert(it->str());
      EXPECT_EQ(exported.count(it->str()), 1u) << it->str() << " in: " << expr;
    }
  }
  EXPECT_GE(used.size(), 20u);

  // PromQL syntax: promtool parses each expression as a recording rule.
  if (!HaveProgram("promtool")) GTEST_SKIP() << "promtool is not installed";
  const bert::testing::TempDir dir("deploy_test_");
  YAML::Emitter rules;
  rules << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq
        << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "dashboard" << YAML::Key
        << "rules" << YAML::Value << YAML::BeginSeq;
  for (size_t i = 0; i < expressions.size(); ++i) {
    rules << YAML::BeginMap << YAML::Key << "record" << YAML::Value
          << "dashboard:expr_" + std::to_string(i) << YAML::Key << "expr" << YAML::Value
          << expressions[i] << YAML::EndMap;
  }
  rules << YAML::EndSeq << YAML::EndMap << YAML::EndSeq << YAML::EndMap;
  std::ofstream(dir.path() / "rules.yml") << rules.c_str();
  std::string output;
  EXPECT_EQ(RunCommand("promtool check rules " + (dir.path() / "rules.yml").string(), &output), 0)
      << output;
}

// docs/deployment.md's table names every metric the classes export.
TEST(DeployTest, DocsListEveryExportedMetric) {
  ControllerMetrics controller;
  AgentMetrics agent;
  controller.ObserveRpc("SubmitJob", 0, 0.001);
  controller.SetQueueLength("cpu", 0);
  controller.SetAgents("cpu", true, 1);
  agent.ObserveRpc("Heartbeat", 0, 0.001);
  agent.SetInfo("a", "v", {"cpu"});
  agent.OnWorkerExit(v1::PRETRAIN, v1::FAILURE_CAUSE_UNSPECIFIED);
  v1::Progress progress;
  progress.set_total(1);
  progress.set_unit("steps");
  progress.set_eta_seconds(1);
  for (JobMetrics* jobs : {&controller.jobs(), &agent.jobs()}) {
    for (const char* name :
         {"train/loss", "train/learning_rate", "train/grad_norm", "train/tokens_per_second",
          "train/mfu", "train/epoch", "eval/loss", "eval/accuracy", "eval/perplexity"}) {
      jobs->SetMetric("j", name, 1, 1);
    }
    jobs->SetStageProgress("j", v1::PRETRAIN, progress);
  }
  const std::string docs = ReadAll(SourceDir() / "docs" / "deployment.md");
  const std::string text = SerializeMetrics({controller.registry(), agent.registry()});
  std::regex type_line(R"(# TYPE (\S+) (\S+))");
  int names = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), type_line), end; it != end; ++it) {
    const std::string name = (*it)[1];
    ++names;
    if (name.rfind("bert_agent_job_", 0) == 0) {
      // Documented as the bert_controller_job_* series under another prefix.
      const std::string twin = "bert_controller_job_" + name.substr(15);
      EXPECT_NE(docs.find("`" + twin + "` | " + (*it)[2].str()), std::string::npos) << name;
      continue;
    }
    EXPECT_NE(docs.find("`" + name + "` | " + (*it)[2].str()), std::string::npos)
        << name << " (" << (*it)[2] << ") is missing from the table in docs/deployment.md";
  }
  EXPECT_GE(names, 50);
}

// An agent the deploy files start: where, the pools it serves, its
// accelerator ("cpu" when it is detected: a CPU image) and, for Kubernetes,
// the accelerators its pod asks for (-1: not said).
struct ShippedAgent {
  std::string where;
  std::set<std::string> pools;
  std::string accelerator = "cpu";
  int accelerators = -1;
};

std::set<std::string> SplitPools(const std::string& text) {
  std::set<std::string> pools;
  std::stringstream in(text);
  for (std::string pool; std::getline(in, pool, ',');) {
    if (!pool.empty()) pools.insert(pool);
  }
  return pools;
}

// Every agent deploy/ ships: Kubernetes workloads, container images (their
// default CMD), the systemd unit with its example environment file.
std::vector<ShippedAgent> ShippedAgents() {
  std::vector<ShippedAgent> agents;
  for (const auto& [key, object] : KubernetesObjects()) {
    if (!object["spec"] || !object["spec"]["template"] || key == "StatefulSet/bertd") continue;
    const YAML::Node container = object["spec"]["template"]["spec"]["containers"][0];
    ShippedAgent agent{"deploy/kubernetes " + key, {}, "cpu", -1};
    for (const YAML::Node& arg : container["args"]) {
      const std::string text = arg.as<std::string>();
      if (text.rfind("--pools=", 0) == 0) agent.pools = SplitPools(text.substr(8));
      if (text.rfind("--accelerator=", 0) == 0) agent.accelerator = text.substr(14);
    }
    const std::string resource = agent.accelerator == "hpu"    ? "habana.ai/gaudi"
                                 : agent.accelerator == "cuda" ? "nvidia.com/gpu"
                                                               : "";
    if (!resource.empty()) {
      const std::string count = ResourceRequest(object, resource);
      agent.accelerators = count.empty() ? 0 : std::stoi(count);
    }
    agents.push_back(agent);
  }
  const std::regex pools_arg(R"re("--pools",\s*"([^"]+)")re");
  const std::regex accelerator_arg(R"re("--accelerator",\s*"([^"]+)")re");
  for (const auto& entry : fs::directory_iterator(DeployDir() / "containers")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("Containerfile.agent", 0) != 0 || entry.path().extension() == ".dockerignore") {
      continue;
    }
    const std::string text = ReadAll(entry.path());
    ShippedAgent agent{"deploy/containers/" + name, {}, "cpu", -1};
    std::smatch m;
    if (std::regex_search(text, m, pools_arg)) agent.pools = SplitPools(m[1]);
    if (std::regex_search(text, m, accelerator_arg)) agent.accelerator = m[1];
    agents.push_back(agent);
  }
  const std::string env = ReadAll(DeployDir() / "config" / "bert-agent.env");
  ShippedAgent systemd{"deploy/systemd/bert-agent.service with deploy/config/bert-agent.env", {},
                       "cpu", -1};
  std::smatch m;
  if (std::regex_search(env, m, std::regex(R"((?:^|\n)BERT_AGENT_POOLS=(\S+))"))) {
    systemd.pools = SplitPools(m[1]);
  }
  agents.push_back(systemd);
  return agents;
}

// Every example spec validates, and every pool it names is served by an agent
// deploy/ ships, with the accelerators its pre-training asks for: a spec
// whose pool no shipped agent serves would wait forever.
TEST(DeployTest, EveryExamplesPoolsAreServedByAShippedAgent) {
  const std::vector<ShippedAgent> agents = ShippedAgents();
  ASSERT_GE(agents.size(), 6u);
  for (const ShippedAgent& agent : agents) EXPECT_FALSE(agent.pools.empty()) << agent.where;
  auto serves = [](const ShippedAgent& agent, const std::string& pool) {
    return agent.pools.contains(pool) || agent.pools.contains("*");
  };
  int examples = 0;
  for (const auto& entry : fs::directory_iterator(SourceDir() / "examples")) {
    if (entry.path().extension() != ".yaml") continue;
    ++examples;
    const std::string name = entry.path().filename().string();
    spec::ParseOptions options;
    options.base_dir = entry.path().parent_path().string();
    options.check_paths = false;  // their corpora are fetched, not committed
    const spec::ParseResult parsed = spec::ParseJobSpec(ReadAll(entry.path()), options);
    ASSERT_TRUE(parsed.ok()) << spec::FormatErrors(entry.path().string(), parsed.errors);
    const v1::ResourcesSpec& resources = parsed.spec.resources();

    bool prep_served = false;
    for (const ShippedAgent& agent : agents) prep_served |= serves(agent, resources.prep_pool());
    EXPECT_TRUE(prep_served) << name << ": no agent in deploy/ serves prep_pool '"
                             << resources.prep_pool() << "'";

    std::vector<std::string> candidates;
    bool train_served = false;
    for (const ShippedAgent& agent : agents) {
      if (!serves(agent, resources.train_pool())) continue;
      candidates.push_back(agent.where + " (" + agent.accelerator + ")");
      if (resources.accelerator() == "cpu") {
        train_served = true;  // CPU training fits any host of its pool
      } else if (agent.accelerator == resources.accelerator()) {
        train_served |= agent.accelerators < 0 || agent.accelerators >= resources.devices();
      }
    }
    std::ostringstream found;
    for (const std::string& c : candidates) found << "\n  " << c;
    EXPECT_TRUE(train_served) << name << ": no agent in deploy/ serves train_pool '"
                              << resources.train_pool() << "' with " << resources.devices() << " "
                              << resources.accelerator() << " devices; agents of that pool:"
                              << found.str();
  }
  EXPECT_GE(examples, 3);
}

// Flags the deployment passes must be flags the binaries accept.
TEST(DeployTest, DeployedFlagsExistInTheBinaries) {
  const char* bin_dir = std::getenv("BERT_BIN_DIR");
  std::map<std::string, std::set<std::string>> flags;  // binary -> flags used
  std::regex flag(R"((?:^|[\s"'\[,])(--[a-z][a-z0-9-]+))");
  auto collect = [&](const std::string& binary, const std::string& text) {
    for (std::sregex_iterator it(text.begin(), text.end(), flag), end; it != end; ++it) {
      flags[binary].insert((*it)[1]);
    }
  };
  auto exec_lines = [](const std::string& text) {
    std::string lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("ExecStart=", 0) == 0 || line.rfind("BERT", 0) == 0) lines += line + "\n";
    }
    return lines;
  };
  collect("bertd", exec_lines(ReadAll(DeployDir() / "systemd" / "bertd.service")) +
                       exec_lines(ReadAll(DeployDir() / "config" / "bertd.env")));
  collect("bert-agent", exec_lines(ReadAll(DeployDir() / "systemd" / "bert-agent.service")) +
                            exec_lines(ReadAll(DeployDir() / "config" / "bert-agent.env")));
  for (const auto& [key, object] : KubernetesObjects()) {
    if (!object["spec"] || !object["spec"]["template"]) continue;
    const std::string binary = key == "StatefulSet/bertd" ? "bertd" : "bert-agent";
    for (const YAML::Node& arg : object["spec"]["template"]["spec"]["containers"][0]["args"]) {
      collect(binary, " " + arg.as<std::string>());
    }
  }
  ASSERT_GE(flags["bertd"].size(), 5u);
  ASSERT_GE(flags["bert-agent"].size(), 6u);
  if (bin_dir == nullptr) GTEST_SKIP() << "BERT_BIN_DIR is not set";
  int checked = 0;
  for (const auto& [binary, used] : flags) {
    const fs::path path = fs::path(bin_dir) / binary;
    if (!fs::exists(path)) {
      std::cerr << "skipping " << binary << ": not built at " << path << "\n";
      continue;
    }
    std::string help;
    RunCommand(path.string() + " --help", &help);
    for (const std::string& f : used) {
      EXPECT_TRUE(std::regex_search(help, std::regex(f + "\\b")))
          << binary << " --help does not list " << f << ", which deploy/ passes";
    }
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "neither bertd nor bert-agent is built in " << bin_dir;
}

TEST(DeployTest, MakeTlsIssuesCertificatesThatVerify) {
  if (!HaveProgram("openssl")) GTEST_SKIP() << "openssl is not installed";
  const bert::testing::TempDir dir("deploy_test_");
  std::string output;
  ASSERT_EQ(RunCommand("bash " + (DeployDir() / "config" / "make-tls.sh").string() + " " +
                           dir.path().string() + " bertd.test IP:127.0.0.1 --client agent-1",
                       &output),
            0)
      << output;
  const std::string ca = (dir.path() / "ca.crt").string();
  EXPECT_EQ(RunCommand("openssl verify -CAfile " + ca + " " + (dir.path() / "server.crt").string() +
                           " " + (dir.path() / "agent-1.crt").string(),
                       &output),
            0)
      << output;
  RunCommand("openssl x509 -noout -ext subjectAltName -in " + (dir.path() / "server.crt").string(),
             &output);
  EXPECT_NE(output.find("DNS:bertd.test"), std::string::npos) << output;
  EXPECT_NE(output.find("IP Address:127.0.0.1"), std::string::npos) << output;
  struct stat key_stat {};
  ASSERT_EQ(stat((dir.path() / "server.key").c_str(), &key_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 077, 0u) << "private keys must not be readable by others";
  // A bad argument is refused with a message.
  EXPECT_NE(RunCommand("bash " + (DeployDir() / "config" / "make-tls.sh").string() + " " +
                           dir.path().string() + " host bogus",
                       &output),
            0);
  EXPECT_NE(output.find("unexpected argument 'bogus'"), std::string::npos) << output;
}

// bertd starts with the example tokens file and certificates from
// make-tls.sh, serves TLS with them and checks the tokens.
TEST(DeployTest, BertdServesTlsAndTokensFromTheExampleConfigs) {
  const char* bin_dir = std::getenv("BERT_BIN_DIR");
  if (bin_dir == nullptr || !fs::exists(fs::path(bin_dir) / "bertd")) {
    GTEST_SKIP() << "bertd is not built";
  }
  if (!HaveProgram("openssl")) GTEST_SKIP() << "openssl is not installed";
  const bert::testing::TempDir dir("deploy_test_");
  std::string output;
  ASSERT_EQ(RunCommand("bash " + (DeployDir() / "config" / "make-tls.sh").string() + " " +
                           (dir.path() / "tls").string() + " bertd.test IP:127.0.0.1",
                       &output),
            0)
      << output;
  const fs::path port_file = dir.path() / "port";
  bert::testing::ChildProcess bertd(
      {(fs::path(bin_dir) / "bertd").string(), "--listen", "127.0.0.1:0", "--data-dir",
       (dir.path() / "data").string(), "--tls-cert", (dir.path() / "tls/server.crt").string(),
       "--tls-key", (dir.path() / "tls/server.key").string(), "--tokens-file",
       (DeployDir() / "config" / "tokens.example").string(), "--port-file", port_file.string()},
      (dir.path() / "bertd.log").string());
  ASSERT_TRUE(bertd.started()) << bertd.error();
  const std::optional<int> port_number =
      bert::testing::WaitForPortFile(port_file.string(), bertd, std::chrono::seconds(10));
  ASSERT_TRUE(port_number.has_value()) << bertd.LogTail();
  const std::string port = std::to_string(*port_number);

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadAll(dir.path() / "tls/ca.crt");
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("bertd.test");
  auto stub = v1::JobService::NewStub(
      grpc::CreateCustomChannel("127.0.0.1:" + port, grpc::SslCredentials(ssl), args));
  auto list_agents = [&](const std::string& token) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::ListAgentsResponse response;
    return stub->ListAgents(&context, v1::ListAgentsRequest(), &response);
  };
  grpc::Status status = list_agents("replace-this-viewer-token-with-random-hex");
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message()
                           << bertd.LogTail();
  EXPECT_EQ(list_agents("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list_agents("not-a-token-of-the-example-file").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace bert::metrics
