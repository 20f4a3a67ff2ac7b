#include "agent/agent.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent_id.h"
#include "agent/failure.h"
#include "agent/metered_reporter.h"
#include "agent/resources.h"
#include "agent/worker_front.h"
#include "common/atomic_file.h"
#include "protocol/grpc_status.h"

namespace bert::agent {
namespace {

using std::chrono::milliseconds;

void Say(const std::string& message) {
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
                   " bert-agent: ", message, "\n");
  fputs(line.c_str(), stderr);
}

bool SameRef(const v1::AssignmentRef& a, const v1::AssignmentRef& b) {
  return a.job_id() == b.job_id() && a.stage() == b.stage() && a.shard_index() == b.shard_index() &&
         a.attempt() == b.attempt();
}

std::string RefName(const v1::AssignmentRef& r) {
  return absl::StrCat(r.job_id(), "/", v1::StageKind_Name(r.stage()), "/shard-", r.shard_index(),
                      "#", r.attempt());
}

bool Transient(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded ||
         s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kUnknown ||
         s.code() == absl::StatusCode::kAborted;
}

std::shared_ptr<grpc::Channel> MakeChannel(const AgentOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
  // Reconnect quickly after a controller restart: the lease it grants on
  // restart is finite.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!o.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (auto pem = ReadFile(o.tls_ca); pem.ok()) ssl.pem_root_certs = *pem;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(o.server, creds, args);
}

}  // namespace

Agent::Agent(AgentOptions options) : options_(std::move(options)) {
  stub_ = v1::AgentService::NewStub(MakeChannel(options_));
  TransferOptions t;
  t.token = options_.token;
  transfer_ = std::make_unique<ArtifactTransfer>(stub_, t);
  rendezvous_ = std::make_unique<GrpcRendezvousChannel>(stub_, options_.token);
  env_.work_dir = options_.work_dir;
  env_.shared_fs = options_.shared_fs;
  env_.worker_path = options_.worker_path;
  env_.cancel_grace = options_.cancel_grace;
  env_.data_roots = options_.data_roots;
  env_.spec_dir_root = options_.spec_dir_root;
  env_.transfer = transfer_.get();
  env_.metrics = options_.metrics;
  env_.rendezvous = rendezvous_.get();
  env_.address = options_.address;
}

Agent::~Agent() {
  Stop();
  for (auto& r : running_) {
    if (r->thread.joinable()) r->thread.join();
  }
}

std::unique_ptr<grpc::ClientContext> Agent::Context(milliseconds timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  if (!options_.token.empty()) context->AddMetadata("authorization", "Bearer " + options_.token);
  return context;
}

absl::Status Agent::Observed(std::string_view method, std::chrono::steady_clock::time_point start,
                             absl::Status status) const {
  if (options_.metrics != nullptr) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    options_.metrics->ObserveRpc(method, static_cast<int>(status.code()), seconds);
  }
  return status;
}

bool Agent::Sleep(milliseconds d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(d));
  return !stopping_;
}

std::string Agent::AgentId() const {
  absl::MutexLock lock(&mu_);
  return agent_id_;
}

void Agent::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (acquiring_ != nullptr) acquiring_->TryCancel();
  for (auto& r : running_) {
    r->cancel = true;
    if (r->reporter) r->reporter->Cancel();
  }
  cv_.SignalAll();
}

absl::Status Agent::Register() {
  absl::MutexLock registering(&register_mu_);
  v1::RegisterRequest request;
  *request.mutable_agent() = info_;
  v1::RegisterResponse response;
  auto context = Context(milliseconds(10000));
  const auto start = std::chrono::steady_clock::now();
  absl::Status s =
      Observed("Register", start,
               protocol::FromGrpcStatus(stub_->Register(context.get(), request, &response)));
  if (!s.ok()) return s;
  std::string agent_id;
  {
    absl::MutexLock lock(&mu_);
    if (!response.agent_id().empty()) agent_id_ = response.agent_id();
    agent_id = agent_id_;
  }
  if (options_.metrics != nullptr) {
    options_.metrics->SetInfo(agent_id, info_.version(), options_.pools);
    options_.metrics->SetConnected(true);
  }
  if (response.heartbeat_interval_ms() > 0) heartbeat_ms_ = response.heartbeat_interval_ms();
  // Assignments the controller thinks we hold but we do not (we restarted):
  // give them back now rather than letting their lease run out.
  for (const v1::AssignmentRef& live : response.live_assignments()) {
    bool held = false;
    {
      absl::MutexLock lock(&mu_);
      for (auto& r : running_) held = held || (!r->done && SameRef(r->ref, live));
    }
    if (held) continue;
    Say(absl::StrCat("abandoning ", RefName(live), " (not running here any more)"));
    Complete(live, StageFailure(v1::AGENT_LOST, "agent restarted; assignment abandoned"));
  }
  Say(absl::StrCat("registered as ", agent_id, " with ", options_.server, "; heartbeat every ",
                   heartbeat_ms_.load(), " ms"));
  return absl::OkStatus();
}

void Agent::HeartbeatLoop() {
  bool unreachable = false;
  while (Sleep(milliseconds(heartbeat_ms_.load()))) {
    v1::HeartbeatRequest request;
    {
      absl::MutexLock lock(&mu_);
      request.set_agent_id(agent_id_);
      for (auto& r : running_) {
        if (!r->done) *request.add_running() = r->ref;
      }
    }
    v1::HeartbeatResponse response;
    auto context = Context(milliseconds(std::max<int64_t>(heartbeat_ms_.load(), 2000)));
    const auto start = std::chrono::steady_clock::now();
    absl::Status s =
        Observed("Heartbeat", start,
                 protocol::FromGrpcStatus(stub_->Heartbeat(context.get(), request, &response)));
    if (options_.metrics != nullptr) {
      options_.metrics->OnHeartbeat(s.ok());
      options_.metrics->SetConnected(s.ok());
      options_.metrics->jobs().ExpireFinishedJobs(absl::Now());
    }
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) {
      // The controller may be restarting; try again next beat.
      if (!unreachable) Say(absl::StrCat("controller unreachable: ", s.ToString()));
      unreachable = true;
      continue;
    }
    if (unreachable) Say("controller reachable again");
    unreachable = false;
    if (!s.ok()) response.set_reregister(true);
    for (const v1::AssignmentRef& c : response.cancel()) {
      absl::MutexLock lock(&mu_);
      for (auto& r : running_) {
        if (!SameRef(r->ref, c)) continue;
        Say(absl::StrCat("cancel ", RefName(c)));
        r->cancel = true;
        if (r->reporter) r->reporter->Cancel();
      }
    }
    for (const v1::AssignmentRef& p : response.pause()) {
      absl::MutexLock lock(&mu_);
      for (auto& r : running_) {
        if (!SameRef(r->ref, p) || r->pause) continue;
        Say(absl::StrCat("pause ", RefName(p), ": checkpoint, then stop"));
        r->pause = true;
        if (r->reporter) r->reporter->Pause();
      }
    }
    if (response.reregister()) {
      if (absl::Status rs = Register(); !rs.ok()) Say(absl::StrCat("re-register: ", rs.message()));
    }
  }
}

void Agent::Complete(const v1::AssignmentRef& ref,
                     const absl::StatusOr<std::vector<v1::Artifact>>& result) {
  v1::CompleteStageRequest request;
  *request.mutable_ref() = ref;
  request.set_success(result.ok());
  if (result.ok()) {
    for (const v1::Artifact& a : *result) *request.add_outputs() = a;
  } else {
    request.set_failure_cause(CauseOf(result.status()));
    request.set_message(std::string(result.status().message()));
  }
  // Keep trying through a controller restart; give up only on a refusal.
  for (int attempt = 0;; ++attempt) {
    v1::CompleteStageResponse response;
    auto context = Context(milliseconds(10000));
    const auto start = std::chrono::steady_clock::now();
    absl::Status s =
        Observed("CompleteStage", start,
                 protocol::FromGrpcStatus(stub_->CompleteStage(context.get(), request, &response)));
    if (s.ok()) return;
    if (!Transient(s) || attempt >= 600) {
      Say(absl::StrCat("complete ", RefName(ref), " refused: ", s.ToString()));
      return;
    }
    std::this_thread::sleep_for(milliseconds(500));
  }
}

void Agent::RunOne(Running* running, v1::Assignment assignment) {
  const v1::AssignmentRef ref = assignment.ref();
  Say(absl::StrCat("start ", RefName(ref)));
  auto send = [this, ref, running](std::vector<v1::StageReport> batch) -> absl::StatusOr<bool> {
    v1::ReportStageRequest request;
    *request.mutable_ref() = ref;
    for (auto& r : batch) *request.add_reports() = std::move(r);
    v1::ReportStageResponse response;
    auto context = Context(milliseconds(10000));
    const auto start = std::chrono::steady_clock::now();
    absl::Status s =
        Observed("ReportStage", start,
                 protocol::FromGrpcStatus(stub_->ReportStage(context.get(), request, &response)));
    if (!s.ok()) return s;
    if (response.pause()) {  // a pausing job: the worker checkpoints and stops
      absl::MutexLock lock(&mu_);
      running->pause = true;
      if (running->reporter) running->reporter->Pause();
    }
    return response.cancel();
  };
  auto on_checkpoint = [this, assignment](v1::CheckpointRecord* record) {
    PublishCheckpoint(assignment, env_, record);
  };
  auto reporter = std::make_shared<BatchingReporter>(ref.stage(), send, options_.report_interval,
                                                     on_checkpoint);
  {
    absl::MutexLock lock(&mu_);
    running->reporter = reporter;
    if (running->cancel || stopping_) reporter->Cancel();
    if (running->pause) reporter->Pause();
  }
  // With metrics on, the stage reports through a MeteredReporter in front of the batcher.
  std::unique_ptr<MeteredReporter> metered;
  StageReporter* stage_reporter = reporter.get();
  const auto started = std::chrono::steady_clock::now();
  if (options_.metrics != nullptr) {
    options_.metrics->OnAssignmentStarted(ref.job_id(), ref.stage());
    metered =
        std::make_unique<MeteredReporter>(*reporter, *options_.metrics, ref.job_id(), ref.stage());
    stage_reporter = metered.get();
  }
  {
    // An older attempt of this piece may still be stopping here (its gang
    // restarted, with --slots above 1): wait for it, so that nothing it still
    // writes (a checkpoint) lands under the new attempt's feet.
    absl::MutexLock lock(&mu_);
    auto older_gone = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& r : running_) {
        if (r.get() != running && !r->done && r->ref.job_id() == ref.job_id() &&
            r->ref.stage() == ref.stage() && r->ref.shard_index() == ref.shard_index() &&
            r->ref.attempt() < ref.attempt()) {
          return false;
        }
      }
      return true;
    };
    while (!older_gone()) cv_.WaitWithTimeout(&mu_, absl::Milliseconds(200));
  }
  absl::StatusOr<std::vector<v1::Artifact>> result;
  try {
    result = RunAssignment(assignment, env_, *stage_reporter);
  } catch (const std::exception& e) {
    result = StageFailure(v1::INTERNAL, absl::StrCat("unexpected exception: ", e.what()));
  }
  if (!result.ok()) {
    reporter->Log(CauseOf(result.status()) == v1::PAUSED_BY_USER ? "info" : "error",
                  std::string(result.status().message()));
  }
  reporter->Finish();
  if (options_.metrics != nullptr) {
    const v1::FailureCause cause =
        result.ok() ? v1::FAILURE_CAUSE_UNSPECIFIED : CauseOf(result.status());
    const v1::State outcome = result.ok()                      ? v1::SUCCEEDED
                              : cause == v1::CANCELLED_BY_USER ? v1::CANCELLED
                                                               : v1::FAILED;
    options_.metrics->OnWorkerExit(ref.stage(), cause);
    options_.metrics->OnAssignmentFinished(
        ref.job_id(), ref.stage(), outcome,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        absl::Now());
  }
  Say(absl::StrCat("finish ", RefName(ref), ": ", result.ok() ? "ok" : result.status().ToString()));
  Complete(ref, result);
  running->done = true;
  cv_.SignalAll();
}

void Agent::ReapFinished() {
  std::vector<std::unique_ptr<Running>> finished;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = running_.begin(); it != running_.end();) {
      if ((*it)->done) {
        finished.push_back(std::move(*it));
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& r : finished) r->thread.join();
}

absl::Status Agent::Run() {
  auto id = LoadOrCreateAgentId(options_.work_dir, options_.id, options_.pools);
  if (!id.ok()) return id.status();
  {
    absl::MutexLock lock(&mu_);
    agent_id_ = *id;
  }

  v1::AgentResources resources;
  if (options_.accelerator == "auto") {
    ResourceProbeOptions probe;
    probe.worker_path = options_.worker_path;
    resources = DetectResources(probe);
  } else {
    ResourceProbeOptions probe;  // cores and memory only
    resources = DetectResources(probe);
    const std::string& a = options_.accelerator;
    if (a == "cuda" || a == "hpu") {
      resources.set_accelerator(a == "cuda" ? v1::CUDA : v1::HPU);
      if (resources.accelerator_count() < 1) resources.set_accelerator_count(1);
      resources.set_accelerator_name(a);
    }
  }
  env_.device = DeviceName(resources.accelerator());
  absl::StatusOr<std::string> worker = StageWorkerPath(
      {options_.worker_front, options_.worker_path, options_.python_worker_path}, env_.device);
  if (!worker.ok()) return worker.status();
  env_.worker_path = *worker;
  env_.threads = options_.threads > 0 ? options_.threads : std::max(1, resources.cpu_cores());

  info_.set_id(*id);
  info_.set_hostname(Hostname());
  for (const auto& p : options_.pools) info_.add_pools(p);
  for (const auto& [k, v] : options_.labels) (*info_.mutable_labels())[k] = v;
  *info_.mutable_resources() = resources;
  info_.set_address(options_.address.empty() ? Hostname() : options_.address);
  info_.set_shared_filesystem(options_.shared_fs);
  info_.set_version("0.1.0");
  Say(absl::StrCat("agent ", *id, ": pools ", absl::StrJoin(options_.pools, ","), ", ",
                   resources.cpu_cores(), " cores, ", resources.memory_bytes() >> 20, " MiB, ",
                   resources.accelerator_count(), " x ", env_.device,
                   options_.shared_fs ? ", shared filesystem" : "", "; worker ", env_.worker_path));

  for (int tries = 0;; ++tries) {
    absl::Status s = Register();
    if (s.ok()) break;
    if (tries % 10 == 0) Say(absl::StrCat("register with ", options_.server, ": ", s.ToString()));
    if (!Transient(s)) return s;
    if (!Sleep(milliseconds(500))) return absl::OkStatus();
  }
  std::thread heartbeat([this] { HeartbeatLoop(); });

  while (true) {
    ReapFinished();
    size_t busy;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      busy = running_.size();
    }
    if (static_cast<int>(busy) >= std::max(1, options_.slots)) {
      absl::MutexLock lock(&mu_);
      cv_.WaitWithTimeout(&mu_, absl::Milliseconds(200));
      continue;
    }
    v1::AcquireAssignmentRequest request;
    request.set_agent_id(AgentId());
    request.set_wait_ms(2000);
    v1::AcquireAssignmentResponse response;
    auto context = Context(milliseconds(12000));
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      acquiring_ = context.get();
    }
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = Observed(
        "AcquireAssignment", start,
        protocol::FromGrpcStatus(stub_->AcquireAssignment(context.get(), request, &response)));
    {
      absl::MutexLock lock(&mu_);
      acquiring_ = nullptr;
    }
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kNotFound ||
          s.code() == absl::StatusCode::kFailedPrecondition) {
        if (absl::Status rs = Register(); !rs.ok())
          Say(absl::StrCat("re-register: ", rs.message()));
      }
      if (!Sleep(milliseconds(500))) break;
      continue;
    }
    if (!response.has_assignment() || response.assignment().ref().job_id().empty()) continue;
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      stopping = stopping_;
      if (!stopping) {
        auto running = std::make_unique<Running>();
        running->ref = response.assignment().ref();
        Running* raw = running.get();
        running->thread = std::thread(
            [this, raw, a = response.assignment()]() mutable { RunOne(raw, std::move(a)); });
        running_.push_back(std::move(running));
      }
    }
    if (stopping) {
      // Taken but not started: hand it back at once.
      Complete(response.assignment().ref(), StageFailure(v1::AGENT_LOST, "agent shutting down"));
      break;
    }
  }

  Stop();
  heartbeat.join();
  std::vector<std::unique_ptr<Running>> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(running_);
  }
  for (auto& r : all) r->thread.join();
  Say("stopped");
  return absl::OkStatus();
}

}  // namespace bert::agent
