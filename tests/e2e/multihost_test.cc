// Hosts for real, on one machine: bertd, two CPU data-prep hosts, two
// training hosts and the user's machine, each in a network namespace of its
// own with its own address (tests/e2e/host_network.h), each agent with its own
// work directory and none sharing the controller's disk, so every artifact
// moves through bertd. The job fans prepare and preprocess out over the two
// prep hosts and pre-trains as a gang of two hosts meeting over their
// addresses with Gloo, at a port node 0's agent chose free on its host
// (protocol/rendezvous.h). One training host is killed (SIGKILL, agent and
// worker) mid-run and comes back: the gang restarts, resumes from the newest
// checkpoint bertd recorded, and the job succeeds; the user's machine pulls
// the model with `bertctl pull` (when bertctl is built).
//
// Needs root for the namespaces (CI runs as root); skips saying why elsewhere.
// The corpus file is read in place by the prep hosts (a job's input data
// lives where its spec says); everything the stages produce travels.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "protocol/checkpoint_names.h"
#include "tests/e2e/cluster.h"
#include "tests/e2e/host_network.h"
#include "tests/testing/child_process.h"

namespace bert::e2e {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kSpec[] = R"(name: multihost
corpus:
  sources:
    - paths: ["brown-1200.txt"]
      format: text
tokenizer:
  vocab_size: 1000
preprocess:
  max_seq_length: 64
model:
  preset: bert-tiny
  num_hidden_layers: 2
  hidden_size: 64
  num_attention_heads: 2
  intermediate_size: 256
training:
  max_steps: 300
  per_device_batch_size: 8
  learning_rate: 1.0e-3
  save_steps: 20
  logging_steps: 10
  eval_steps: 0
resources:
  prep_pool: cpu
  train_pool: train
  prep_shards: 2
  hosts: 2
  max_attempts: 4
)";
constexpr int kMaxSteps = 300;

// The machines: the controller, the user's, two prep hosts, two training hosts.
const std::vector<std::string> kHosts = {"ctl", "user", "prep-a", "prep-b", "train-a", "train-b"};

bool WaitUntil(const std::function<bool()>& pred, seconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(200));
  }
  return false;
}

std::vector<v1::CheckpointRecord> Checkpoints(Cluster& c, const std::string& job) {
  v1::ListCheckpointsRequest request;
  request.set_job_id(job);
  v1::ListCheckpointsResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(5));
  c.jobs().ListCheckpoints(&context, request, &response);
  return {response.checkpoints().begin(), response.checkpoints().end()};
}

int64_t NewestStep(const std::vector<v1::CheckpointRecord>& records) {
  int64_t newest = -1;
  for (const auto& r : records) newest = std::max(newest, r.step());
  return newest;
}

// The kernel's ephemeral port range, where a port picked with bind(0) lies.
std::pair<int, int> EphemeralPorts() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0, high = 0;
  in >> low >> high;
  return {low, high};
}

struct Meeting {
  std::string agent;
  std::string address;
  int port = 0;
  int node = -1;
};

// The "gang rendezvous at ADDRESS:PORT as node N" lines the agents logged.
std::vector<Meeting> Meetings(const std::vector<v1::Event>& events) {
  static const std::regex kLine(R"(gang rendezvous at ([0-9.]+):([0-9]+) as node ([0-9]+))");
  std::vector<Meeting> out;
  for (const v1::Event& e : events) {
    std::smatch m;
    if (!e.has_log() || e.log().stage() != v1::PRETRAIN) continue;
    const std::string& message = e.log().message();
    if (!std::regex_search(message, m, kLine)) continue;
    out.push_back({e.log().agent_id(), m[1], std::stoi(m[2]), std::stoi(m[3])});
  }
  return out;
}

class MultiHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string missing = Cluster::Missing(); !missing.empty()) {
      GTEST_SKIP() << "the multi-host test needs bertd, bert-agent and bert-worker: " << missing;
    }
    if (std::string why = HostNetwork::Unavailable(); !why.empty()) {
      GTEST_SKIP() << "the multi-host test runs each host in a network namespace: " << why;
    }
    network_ = std::make_unique<HostNetwork>(kHosts);
    ASSERT_TRUE(network_->ok()) << network_->error();
    // This test is the user's machine: its gRPC calls go over the hosts'
    // network. Before any channel exists, so gRPC's threads start there too.
    ASSERT_TRUE(network_->Enter("user")) << network_->error();
    cluster_ = std::make_unique<Cluster>("multihost");
  }

  // Starts `host`'s agent (its own work directory under the test's).
  void StartAgent(const std::string& host, const std::string& pools) {
    const std::string work = cluster_->dir() + "/" + host;
    cluster_->StartAgentOn(network_->Prefix(host), work, host, pools, /*shared_fs=*/false,
                           {"--address", network_->Address(host)});
  }

  std::unique_ptr<HostNetwork> network_;  // outlives the processes on it
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(MultiHostTest, GangOfTwoHostsSurvivesAHostKilledMidRun) {
  Cluster& c = *cluster_;
  c.PlaceController(network_->Prefix("ctl"), network_->Address("ctl"));
  c.StartController();
  for (const char* host : {"prep-a", "prep-b"}) StartAgent(host, "cpu");
  for (const char* host : {"train-a", "train-b"}) StartAgent(host, "train");
  // All four registered over the network before the job comes, so that the
  // fan-out spreads over both prep hosts.
  ASSERT_TRUE(WaitUntil(
      [&] {
        v1::ListAgentsRequest request;
        v1::ListAgentsResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + seconds(5));
        if (!c.jobs().ListAgents(&context, request, &response).ok()) return false;
        int healthy = 0;
        for (const v1::AgentInfo& a : response.agents()) healthy += a.healthy() ? 1 : 0;
        return healthy == 4;
      },
      seconds(30)))
      << "the agents did not all register\n"
      << c.Logs();
  const std::string id = c.Submit(kSpec, Cluster::SourceDir() + "/tests/e2e/testdata");
  ASSERT_FALSE(absl::StartsWith(id, "error")) << id << "\n" << c.Logs();

  // Mid-run: the gang met, and bertd recorded a checkpoint.
  int64_t recorded_before_kill = -1;
  ASSERT_TRUE(WaitUntil(
      [&] {
        const v1::Stage* s = FindStage(c.GetJob(id), v1::PRETRAIN);
        if (s == nullptr || s->state() != v1::RUNNING) return false;
        recorded_before_kill = NewestStep(Checkpoints(c, id));
        return recorded_before_kill > 0 && Meetings(c.Events(id)).size() >= 2;
      },
      seconds(180)))
      << "pre-training never got going\n"
      << c.Logs();
  ASSERT_LT(recorded_before_kill, kMaxSteps) << "too fast to kill mid-run";

  // Host train-b dies (its agent and, with it, its worker) and comes back.
  c.KillAgent("train-b");
  std::this_thread::sleep_for(milliseconds(1000));
  StartAgent("train-b", "train");

  const v1::Job job = c.WaitFor(id, Finished, seconds(180));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.failure_message() << "\n" << c.Logs();
  const std::vector<v1::Event> events = c.Events(id);

  // Each stage ran on hosts of its pool; prepare fanned out over both prep hosts.
  std::map<v1::StageKind, std::set<std::string>> ran_on;
  for (const v1::Event& e : events) {
    if (e.has_log() && !e.log().agent_id().empty()) ran_on[e.log().stage()].insert(e.log().agent_id());
  }
  EXPECT_EQ(ran_on[v1::PREPARE], (std::set<std::string>{"prep-a", "prep-b"}));
  EXPECT_EQ(ran_on[v1::PRETRAIN], (std::set<std::string>{"train-a", "train-b"}));
  for (v1::StageKind k : {v1::TOKENIZER, v1::PREPROCESS}) {
    for (const std::string& agent : ran_on[k]) EXPECT_TRUE(absl::StartsWith(agent, "prep-")) << agent;
  }
  for (const std::string& agent : ran_on[v1::EXPORT]) {
    EXPECT_TRUE(absl::StartsWith(agent, "train-")) << agent;
  }

  // The gang met at node 0's address, at a port node 0's kernel handed out
  // (the ephemeral range), both nodes at the same one, once per attempt.
  const std::vector<Meeting> meetings = Meetings(events);
  const auto [low, high] = EphemeralPorts();
  std::map<int, std::set<std::string>> agents_by_port;
  for (const auto& r : meetings) {
    EXPECT_TRUE(r.address == network_->Address("train-a") || r.address == network_->Address("train-b"))
        << r.address;
    EXPECT_GE(r.port, low);
    EXPECT_LE(r.port, high);
    agents_by_port[r.port].insert(r.agent);
  }
  ASSERT_GE(agents_by_port.size(), 2u) << "the restarted gang met again (at a new port)\n" << c.Logs();
  for (const auto& [port, agents] : agents_by_port) {
    EXPECT_EQ(agents.size(), 2u) << "port " << port << " was not shared by both hosts";
  }

  // The gang restarted and resumed from a checkpoint at least as new as the
  // newest bertd had recorded when the host died.
  const v1::Stage* pretrain = FindStage(job, v1::PRETRAIN);
  ASSERT_NE(pretrain, nullptr);
  EXPECT_GE(pretrain->attempt(), 2);
  int64_t resumed_at = -1;
  static const std::regex kResumed(R"(resumed from (checkpoint-[0-9]+))");
  for (const v1::Event& e : events) {
    std::smatch m;
    if (e.has_log() && e.log().stage() == v1::PRETRAIN &&
        std::regex_search(e.log().message(), m, kResumed)) {
      resumed_at = std::max(resumed_at, protocol::ParseCheckpointStep(m[1].str()).value_or(-1));
    }
  }
  EXPECT_GE(resumed_at, recorded_before_kill) << c.Logs();
  EXPECT_EQ(NewestStep(Checkpoints(c, id)), kMaxSteps);

  // Nothing was shared: the training hosts fetched their inputs from bertd.
  for (const char* host : {"train-a", "train-b"}) {
    EXPECT_TRUE(fs::exists(c.dir() + "/" + host + "/artifacts/" + id)) << host;
  }

  // The user's machine (this test's namespace) pulls the model.
  if (!Cluster::Missing({"bertctl"}).empty()) {
    GTEST_SKIP() << "the job succeeded; bertctl is not built, so the pull is not tried";
  }
  const std::string dest = c.dir() + "/user-machine/model";
  testing::ChildProcess pull({Cluster::BinDir() + "/bertctl", "pull", id, "model", "--to", dest,
                              "--plain", "--server", c.ControllerTarget()},
                             c.dir() + "/bertctl-pull.log");
  const std::optional<int> status = pull.WaitFor(std::chrono::milliseconds(60000));
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << pull.LogTail();
  for (const char* file : {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"}) {
    EXPECT_TRUE(fs::exists(dest + "/" + file)) << file;
  }
}

}  // namespace
}  // namespace bert::e2e
