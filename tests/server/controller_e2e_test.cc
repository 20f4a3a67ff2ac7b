// bertd as a process: submit (with bertctl when it is built), watch, kill -9,
// restart, and find the job and every event intact; running work is
// reconciled (an agent that comes back continues, one that does not is
// re-queued). Also the --local-agent supervisor.
#include <chrono>
#include <functional>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <thread>

#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "common/atomic_file.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/metrics/http_get.h"
#include "tests/testing/child_process.h"
#include "tests/testing/port_file.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {

using bert::testing::ChildProcess;
namespace fs = std::filesystem;

std::string BinDir() {
  const char* dir = std::getenv("BERT_BIN_DIR");
  return dir != nullptr ? dir : "";
}

std::string RunCommand(const std::string& command, int* exit_code) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  *exit_code = WEXITSTATUS(::pclose(pipe));
  return out;
}

class ControllerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bertd_ = BinDir() + "/bertd";
    if (!fs::exists(bertd_)) GTEST_SKIP() << "bertd is not built in " << BinDir();
    fs::create_directories(dir_ / "data");
    std::ofstream(dir_ / "data" / "a.txt") << "hello world\n";
    std::ofstream(dir_ / "job.yaml") << "name: e2e\ncorpus:\n  sources:\n    - paths: [data/*.txt]\n"
                                        "      format: text\nmodel:\n  preset: bert-tiny\n"
                                        "resources:\n  prep_shards: 2\noutput:\n  dir: out\n";
  }
  void TearDown() override { bertd_process_.reset(); }

  void StartBertd(std::vector<std::string> extra = {}) {
    const std::string port_file = (dir_ / "port").string();
    fs::remove(port_file);
    std::vector<std::string> argv = {bertd_, "--listen", "127.0.0.1:0", "--data-dir",
                                     (dir_ / "state").string(), "--port-file", port_file,
                                     "--lease-ttl-ms", "2000", "--heartbeat-interval-ms", "200",
                                     "--restart-grace-ms", "3000"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    bertd_process_ = std::make_unique<ChildProcess>(argv, (dir_ / "bertd.log").string());
    ASSERT_TRUE(bertd_process_->started()) << bertd_process_->error();
    const std::optional<int> port = bert::testing::WaitForPortFile(port_file, *bertd_process_);
    ASSERT_TRUE(port.has_value()) << "bertd did not start; log:\n" << bertd_process_->LogTail();
    address_ = "127.0.0.1:" + std::to_string(*port);
    auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel);
    agents_ = v1::AgentService::NewStub(channel);
  }

  std::vector<v1::Event> Events(const std::string& job_id, int64_t after) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_seq(after);
    auto reader = jobs_->WatchJob(&context, request);
    std::vector<v1::Event> events;
    v1::Event event;
    while (reader->Read(&event)) events.push_back(event);
    EXPECT_TRUE(reader->Finish().ok());
    return events;
  }

  v1::Job GetJob(const std::string& id) {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_job_id(id);
    v1::Job job;
    EXPECT_TRUE(jobs_->GetJob(&context, request, &job).ok());
    return job;
  }

  v1::RegisterResponse Register(const std::string& id) {
    grpc::ClientContext context;
    v1::RegisterRequest request;
    request.mutable_agent()->set_id(id);
    request.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse response;
    EXPECT_TRUE(agents_->Register(&context, request, &response).ok());
    return response;
  }

  v1::Assignment Acquire(const std::string& id) {
    grpc::ClientContext context;
    v1::AcquireAssignmentRequest request;
    request.set_agent_id(id);
    request.set_wait_ms(2000);
    v1::AcquireAssignmentResponse response;
    EXPECT_TRUE(agents_->AcquireAssignment(&context, request, &response).ok());
    return response.assignment();
  }

  // Submits with bertctl when it is built (as a user would), else over gRPC.
  std::string Submit(const std::string& key, bool* already_existed) {
    const std::string bertctl = BinDir() + "/bertctl";
    if (fs::exists(bertctl)) {
      int code = 0;
      std::string out = RunCommand(bertctl + " -s " + address_ + " -o json submit " +
                                (dir_ / "job.yaml").string() + " --idempotency-key " + key + " 2>&1",
                            &code);
      EXPECT_EQ(code, 0) << out;
      std::smatch m;
      EXPECT_TRUE(std::regex_search(out, m, std::regex("\"id\": *\"(j-[^\"]+)\""))) << out;
      *already_existed = out.find("\"alreadyExisted\": true") != std::string::npos ||
                         out.find("\"already_existed\": true") != std::string::npos;
      return m.size() > 1 ? m[1].str() : "";
    }
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    request.set_spec_yaml(*ReadFile((dir_ / "job.yaml").string()));
    request.set_base_dir(dir_.string());
    request.set_idempotency_key(key);
    v1::SubmitJobResponse response;
    EXPECT_TRUE(jobs_->SubmitJob(&context, request, &response).ok());
    *already_existed = response.already_existed();
    return response.job().id();
  }

  std::string bertd_;
  const bert::testing::TempDir temp_dir_{"e2e_"};  // removed after bertd stopped
  const fs::path dir_ = temp_dir_.path();
  std::unique_ptr<ChildProcess> bertd_process_;
  std::string address_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
};

TEST_F(ControllerE2eTest, Sigkill_RestartKeepsJobsEventsAndReconcilesRunningWork) {
  StartBertd();
  bool existed = true;
  const std::string job_id = Submit("key-1", &existed);
  ASSERT_FALSE(job_id.empty());
  EXPECT_FALSE(existed);

  Register("a1");
  Register("a2");
  v1::Assignment kept = Acquire("a1");
  v1::Assignment lost = Acquire("a2");
  ASSERT_EQ(kept.ref().stage(), v1::PREPARE);
  ASSERT_EQ(lost.ref().stage(), v1::PREPARE);
  {
    grpc::ClientContext context;
    v1::ReportStageRequest report;
    *report.mutable_ref() = kept.ref();
    report.add_reports()->mutable_progress()->set_done(5);
    report.add_reports()->mutable_metric()->set_name("prepare/lines");
    report.add_reports()->mutable_log()->set_message("halfway");
    v1::ReportStageResponse response;
    ASSERT_TRUE(agents_->ReportStage(&context, report, &response).ok());
  }
  // A follower sees events live, then loses the connection when bertd dies.
  std::vector<v1::Event> followed;
  std::thread follower([&] {
    grpc::ClientContext context;
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_follow(true);
    auto reader = jobs_->WatchJob(&context, request);
    v1::Event event;
    while (reader->Read(&event)) followed.push_back(event);
    reader->Finish();
  });
  const std::vector<v1::Event> before = Events(job_id, 0);
  const v1::Job job_before = GetJob(job_id);
  ASSERT_EQ(static_cast<int64_t>(before.size()), job_before.last_event_seq());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  bertd_process_->Signal(SIGKILL);
  bertd_process_->Wait();
  follower.join();
  ASSERT_FALSE(followed.empty());
  StartBertd();

  const v1::Job job_after = GetJob(job_id);
  EXPECT_EQ(job_after.state(), v1::RUNNING);
  EXPECT_EQ(job_after.last_event_seq(), job_before.last_event_seq());
  const std::vector<v1::Event> after = Events(job_id, 0);
  ASSERT_GE(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].SerializeAsString(), before[i].SerializeAsString()) << "event " << i + 1;
  }
  // The follower resumes from the last seq it saw and misses nothing.
  const std::vector<v1::Event> rest = Events(job_id, followed.back().seq());
  EXPECT_EQ(followed.size() + rest.size(), after.size());
  // Same idempotency key after the restart: the same job.
  EXPECT_EQ(Submit("key-1", &existed), job_id);
  EXPECT_TRUE(existed);

  // a1 comes back and still runs its piece; a2 never does.
  v1::RegisterResponse back = Register("a1");
  ASSERT_EQ(back.live_assignments_size(), 1);
  EXPECT_EQ(back.live_assignments(0).attempt(), kept.ref().attempt());
  bool requeued = false;
  for (int i = 0; i < 60 && !requeued; ++i) {
    grpc::ClientContext context;
    v1::HeartbeatRequest hb;
    hb.set_agent_id("a1");
    *hb.add_running() = kept.ref();
    v1::HeartbeatResponse response;
    ASSERT_TRUE(agents_->Heartbeat(&context, hb, &response).ok());
    EXPECT_EQ(response.cancel_size(), 0);
    const v1::ShardAttempt& shard = GetJob(job_id).stages(0).shards(lost.ref().shard_index());
    requeued = shard.state() == v1::QUEUED && shard.failure_cause() == v1::AGENT_LOST;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(requeued) << GetJob(job_id).DebugString();
  {
    grpc::ClientContext context;
    v1::CompleteStageRequest done;
    *done.mutable_ref() = kept.ref();
    done.set_success(true);
    v1::Artifact* out = done.add_outputs();
    out->set_name("text");
    // Under the controller's artifact root, in the piece's own job and stage.
    out->set_uri("file://" + (dir_ / "state" / "artifacts" / job_id / "prepare" /
                              ("shard-" + std::to_string(kept.ref().shard_index())) / "text")
                                 .string());
    v1::CompleteStageResponse response;
    grpc::Status s = agents_->CompleteStage(&context, done, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(GetJob(job_id).stages(0).shards(kept.ref().shard_index()).state(), v1::SUCCEEDED);

  const std::string bertctl = BinDir() + "/bertctl";
  if (fs::exists(bertctl)) {
    int code = 0;
    std::string out = RunCommand(bertctl + " -s " + address_ + " watch --no-follow --plain " + job_id + " 2>&1", &code);
    EXPECT_EQ(code, 0) << out;
  }
  bertd_process_->Signal(SIGTERM);
  const std::optional<int> status = bertd_process_->WaitFor(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST_F(ControllerE2eTest, LocalAgentIsStartedRestartedAndStopped) {
  // A stand-in agent: records its arguments and pid, then waits.
  const std::string fake = (dir_ / "fake-agent.sh").string();
  const std::string record = (dir_ / "agent-args").string();
  std::ofstream(fake) << "#!/bin/sh\necho \"$$ $*\" >> " << record << "\nexec sleep 600\n";
  fs::permissions(fake, fs::perms::owner_all);
  StartBertd({"--local-agent", "--agent-path", fake});
  auto lines = [&] {
    std::vector<std::string> out;
    std::ifstream in(record);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  };
  for (int i = 0; i < 100 && lines().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(lines().size(), 1u);
  const std::string first = lines()[0];
  EXPECT_NE(first.find("--server " + address_), std::string::npos) << first;
  EXPECT_NE(first.find("--pools *"), std::string::npos) << first;
  EXPECT_NE(first.find("--shared-fs"), std::string::npos) << first;
  const pid_t agent_pid = std::stoi(first.substr(0, first.find(' ')));
  ::kill(agent_pid, SIGKILL);  // the agent dies: bertd starts another
  for (int i = 0; i < 100 && lines().size() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(lines().size(), 2u);
  const pid_t second_pid = std::stoi(lines()[1].substr(0, lines()[1].find(' ')));
  bertd_process_->Signal(SIGTERM);
  ASSERT_TRUE(bertd_process_->WaitFor(std::chrono::seconds(15)).has_value());
  EXPECT_NE(::kill(second_pid, 0), 0) << "the local agent outlived bertd";
}

}  // namespace
}  // namespace bert::server

namespace bert::server {
namespace {

// With tokens, the real local agent gets its token by a 0600 file, never on
// its command line (readable by any local user in /proc), and its token acts
// as its own agent id: it registers and stays healthy.
TEST_F(ControllerE2eTest, LocalAgentTokenIsNotOnItsCommandLine) {
  const std::string agent = BinDir() + "/bert-agent";
  if (!fs::exists(agent)) GTEST_SKIP() << "bert-agent is not built in " << BinDir();
  const std::string tokens = (dir_ / "tokens.txt").string();
  std::ofstream(tokens) << "admin-token-0123456789 admin root\n";
  StartBertd({"--tokens-file", tokens, "--local-agent", "--agent-path", agent});
  bool registered = false;
  for (int i = 0; i < 200 && !registered; ++i) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer admin-token-0123456789");
    v1::ListAgentsRequest request;
    v1::ListAgentsResponse response;
    if (jobs_->ListAgents(&context, request, &response).ok()) {
      for (const v1::AgentInfo& a : response.agents()) registered |= a.id() == "local" && a.healthy();
    }
    if (!registered) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(registered) << "the local agent did not register; log:\n" << bertd_process_->LogTail();
  const fs::path token_file = dir_ / "state" / "local-agent" / "agent.token";
  ASSERT_TRUE(fs::exists(token_file));
  EXPECT_EQ(fs::status(token_file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  std::string token;
  std::ifstream(token_file) >> token;
  ASSERT_GE(token.size(), 16u);
  std::smatch match;
  const std::string log = bertd_process_->LogTail();
  ASSERT_TRUE(std::regex_search(log, match, std::regex("local agent pid ([0-9]+)"))) << log;
  std::ifstream cmdline_file("/proc/" + match[1].str() + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(cmdline_file)), std::istreambuf_iterator<char>());
  ASSERT_NE(cmdline.find("--token-file"), std::string::npos) << cmdline;
  EXPECT_EQ(cmdline.find(token), std::string::npos) << "the token is on the agent's command line";
  bertd_process_->Signal(SIGTERM);
  ASSERT_TRUE(bertd_process_->WaitFor(std::chrono::seconds(15)).has_value());
}

// A free TCP port on loopback (for --metrics-listen, which prints none).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), length);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  close(fd);
  return ntohs(addr.sin_port);
}

// A job for 8 HPUs in pool "gaudi" (the article's) on a bertd no agent of
// which could run its first stage: `bertctl get` says why, `bertctl list`
// shows it waiting, /metrics counts it; when an agent that could registers,
// the reason goes.
TEST_F(ControllerE2eTest, AJobNoAgentCouldRunSaysWhyUntilOneRegisters) {
  const std::string bertctl = BinDir() + "/bertctl";
  if (!fs::exists(bertctl)) GTEST_SKIP() << "bertctl is not built in " << BinDir();
  std::ofstream(dir_ / "gaudi.yaml") << "name: gaudi-job\ncorpus:\n  sources:\n"
                                        "    - paths: [data/*.txt]\n      format: text\n"
                                        "model:\n  preset: bert-tiny\n"
                                        "resources:\n  accelerator: hpu\n  devices: 8\n"
                                        "  train_pool: gaudi\noutput:\n  dir: out\n";
  const int metrics_port = FreePort();
  StartBertd({"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port)});
  const std::string ctl = bertctl + " -s " + address_ + " ";
  int code = 0;
  std::string out = RunCommand(ctl + "-o json submit " + (dir_ / "gaudi.yaml").string() + " 2>&1", &code);
  ASSERT_EQ(code, 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\"id\": *\"(j-[^\"]+)\""))) << out;
  const std::string id = m[1];

  auto heartbeat = [&](const std::string& agent) {
    grpc::ClientContext context;
    v1::HeartbeatRequest beat;
    beat.set_agent_id(agent);
    v1::HeartbeatResponse response;
    agents_->Heartbeat(&context, beat, &response);
  };
  auto register_agent = [&](const std::string& agent, const std::string& pool,
                            v1::AcceleratorKind kind, int count) {
    grpc::ClientContext context;
    v1::RegisterRequest request;
    request.mutable_agent()->set_id(agent);
    request.mutable_agent()->add_pools(pool);
    request.mutable_agent()->mutable_resources()->set_accelerator(kind);
    request.mutable_agent()->mutable_resources()->set_accelerator_count(count);
    v1::RegisterResponse response;
    EXPECT_TRUE(agents_->Register(&context, request, &response).ok());
  };
  // Polls `bertctl get` until `pred` holds, keeping the agents registered so far alive.
  std::vector<std::string> live;
  auto get_until = [&](const std::function<bool(const std::string&)>& pred) {
    std::string text;
    for (int i = 0; i < 100; ++i) {
      text = RunCommand(ctl + "get " + id + " 2>&1", &code);
      if (code == 0 && pred(text)) return text;
      for (const std::string& agent : live) heartbeat(agent);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "bertctl get never showed what was expected:\n" << text;
    return text;
  };
  out = get_until([](const std::string& t) {
    return t.find("waiting    prepare needs pool 'cpu', and no live agent is registered") !=
           std::string::npos;
  });

  // The Gaudi host does not help the CPU stage; the reason says which pools there are.
  register_agent("g1", "gaudi", v1::HPU, 8);
  live.push_back("g1");
  out = get_until([](const std::string& t) {
    return t.find("which no live agent serves (pools served: gaudi)") != std::string::npos;
  });
  EXPECT_NE(out.find("prepare    queued"), std::string::npos) << out;
  const std::string list = RunCommand(ctl + "list 2>&1", &code);
  EXPECT_TRUE(std::regex_search(list, std::regex(id + R"(\s+gaudi-job\s+waiting)"))) << list;
  EXPECT_NE(list.find("bertctl get ID says what is missing"), std::string::npos) << list;
  std::string metrics;
  for (int i = 0; i < 50; ++i) {
    metrics = bert::testing::HttpGet(metrics_port, "/metrics").body;
    if (metrics.find("bert_controller_unschedulable_jobs{pool=\"cpu\"} 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_NE(metrics.find("bert_controller_unschedulable_jobs{pool=\"cpu\"} 1"), std::string::npos)
      << metrics;

  // A CPU agent registers: the job waits only for room now, with no reason.
  register_agent("a1", "cpu", v1::CPU, 0);
  live.push_back("a1");
  out = get_until([](const std::string& t) { return t.find("waiting") == std::string::npos; });
  EXPECT_NE(out.find("prepare    queued"), std::string::npos) << out;
}

}  // namespace
}  // namespace bert::server
