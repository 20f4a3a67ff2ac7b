// The job manager without a network: submission, the stage pipeline with
// fan-out and join, leases with a fake clock, retries by cause, stale
// attempts, gangs, cancellation and recovery after a restart.
#include "server/job_manager.h"

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/clock.h"
#include "server/event_bus.h"
#include "storage/store.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {

constexpr char kSpec[] = R"(name: tiny
corpus:
  sources:
    - paths: [data/*.txt]
      format: text
model:
  preset: bert-tiny
training:
  max_steps: 10
resources:
  prep_shards: 2
  max_attempts: 2
output:
  dir: out
)";

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Restart();
  }
  void TearDown() override {
    manager_.reset();
    store_.reset();
  }

  // Drops the manager and store (as a crash would) and opens them again.
  void Restart() {
    manager_.reset();
    store_.reset();
    auto store = storage::Store::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
    JobManagerOptions options;
    options.check_spec_paths = false;
    options.lease_ttl = absl::Seconds(10);
    options.restart_grace = absl::Seconds(20);
    options.heartbeat_interval = absl::Seconds(2);
    options.retry.backoff_base = absl::Seconds(4);
    auto manager = JobManager::Create(store_.get(), &bus_, &clock_, options);
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = std::move(manager).value();
  }

  v1::Job Submit(const std::string& yaml = kSpec, const std::string& key = "") {
    v1::SubmitJobRequest request;
    request.set_spec_yaml(yaml);
    request.set_idempotency_key(key);
    auto result = manager_->Submit(request, "alice");
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->job : v1::Job();
  }

  void RegisterAgent(const std::string& id, std::vector<std::string> pools = {"cpu", "train"},
                     v1::AcceleratorKind acc = v1::CPU, int devices = 0) {
    v1::AgentInfo agent;
    agent.set_id(id);
    agent.set_hostname(id + ".local");
    for (auto& p : pools) agent.add_pools(p);
    agent.mutable_resources()->set_accelerator(acc);
    agent.mutable_resources()->set_accelerator_count(devices);
    ASSERT_TRUE(manager_->Register(agent).ok());
  }

  std::optional<v1::Assignment> Acquire(const std::string& agent) {
    auto a = manager_->Acquire(agent, absl::ZeroDuration());
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : std::nullopt;
  }

  std::optional<v1::Assignment> AcquireAny() {
    for (const char* agent : {"a1", "a2"}) {
      if (auto a = Acquire(agent)) return a;
    }
    return std::nullopt;
  }

  absl::Status Succeed(const v1::Assignment& a, const std::string& output_name) {
    v1::CompleteStageRequest request;
    *request.mutable_ref() = a.ref();
    request.set_success(true);
    v1::Artifact* out = request.add_outputs();
    out->set_name(output_name);
    out->set_uri("file:///tmp/" + output_name);
    out->set_sha256("00");
    return manager_->Complete(request);
  }

  absl::Status Fail(const v1::Assignment& a, v1::FailureCause cause) {
    v1::CompleteStageRequest request;
    *request.mutable_ref() = a.ref();
    request.set_success(false);
    request.set_failure_cause(cause);
    request.set_message("boom");
    return manager_->Complete(request);
  }

  v1::Job Get(const std::string& id) {
    auto job = manager_->GetJob(id);
    EXPECT_TRUE(job.ok());
    return *job;
  }

  void ExpectDenseEvents(const v1::Job& job) {
    auto events = store_->ListEvents(job.id(), 0, 100000);
    ASSERT_TRUE(events.ok());
    ASSERT_EQ(static_cast<int64_t>(events->size()), job.last_event_seq());
    for (size_t i = 0; i < events->size(); ++i) {
      EXPECT_EQ((*events)[i].seq(), static_cast<int64_t>(i + 1));
    }
  }

  const bert::testing::TempDir temp_dir_{"jm_"};  // removed after the members below
  const std::filesystem::path dir_ = temp_dir_.path();
  FakeClock clock_;
  EventBus bus_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<JobManager> manager_;
};

TEST_F(JobManagerTest, SubmitExpandsStagesAndPersists) {
  v1::Job job = Submit();
  EXPECT_EQ(job.state(), v1::QUEUED);
  ASSERT_EQ(job.stages_size(), 5);
  EXPECT_EQ(job.stages(0).kind(), v1::PREPARE);
  EXPECT_EQ(job.stages(0).shard_count(), 2);
  EXPECT_EQ(job.stages(0).shards_size(), 2);  // the current stage has its pieces
  EXPECT_EQ(job.stages(3).kind(), v1::PRETRAIN);
  EXPECT_EQ(job.submitted_by(), "alice");
  ExpectDenseEvents(job);
  auto stored = store_->GetJob(job.id());
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->last_event_seq(), job.last_event_seq());
}

TEST_F(JobManagerTest, InvalidSpecIsRefusedWithPathAndLineAndNothingStored) {
  v1::SubmitJobRequest request;
  request.set_spec_yaml("name: x\ntraining:\n  max_steps: -3\n  bogus_field: 1\n");
  auto result = manager_->Submit(request, "alice");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("training.max_steps"), std::string::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("job.yaml:3:"), std::string::npos) << result.status();
  int jobs = 0;
  ASSERT_TRUE(store_->ForEachJob([&](const v1::Job&) { return ++jobs, true; }).ok());
  EXPECT_EQ(jobs, 0);
}

TEST_F(JobManagerTest, IdempotencyKeyReturnsTheSameJob) {
  v1::Job first = Submit(kSpec, "k1");
  v1::SubmitJobRequest again;
  again.set_spec_yaml(kSpec);
  again.set_idempotency_key("k1");
  auto second = manager_->Submit(again, "alice");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->already_existed);
  EXPECT_EQ(second->job.id(), first.id());
  auto other_caller = manager_->Submit(again, "bob");
  ASSERT_TRUE(other_caller.ok());
  EXPECT_NE(other_caller->job.id(), first.id());
  again.set_spec_yaml(std::string(kSpec) + "priority: 3\n");
  EXPECT_EQ(manager_->Submit(again, "alice").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(JobManagerTest, RunsThePipelineWithFanOutJoinAndInputs) {
  v1::Job job = Submit();
  RegisterAgent("a1");
  RegisterAgent("a2");
  auto s0 = Acquire("a1");
  auto s1 = Acquire("a2");
  ASSERT_TRUE(s0 && s1);
  EXPECT_EQ(s0->ref().stage(), v1::PREPARE);
  EXPECT_EQ(s0->ref().shard_index(), 0);
  EXPECT_EQ(s1->ref().shard_index(), 1);
  EXPECT_EQ(s0->ref().attempt(), 1);
  EXPECT_EQ(s0->shard_count(), 2);
  EXPECT_FALSE(Acquire("a1").has_value());  // one CPU piece per agent, none left anyway
  EXPECT_EQ(Get(job.id()).state(), v1::RUNNING);
  ASSERT_TRUE(Succeed(*s0, "text").ok());
  ASSERT_TRUE(Succeed(*s1, "text").ok());
  auto join = Acquire("a1");
  ASSERT_TRUE(join);
  EXPECT_EQ(join->ref().stage(), v1::PREPARE);
  EXPECT_EQ(join->ref().shard_index(), 2);  // shard_index == shard_count: the join
  ASSERT_EQ(join->inputs_size(), 2);
  EXPECT_NE(join->inputs(0).id(), join->inputs(1).id());
  ASSERT_TRUE(Succeed(*join, "corpus").ok());

  auto tok = AcquireAny();
  ASSERT_TRUE(tok) << Get(job.id()).DebugString();
  EXPECT_EQ(tok->ref().stage(), v1::TOKENIZER);
  ASSERT_EQ(tok->inputs_size(), 1);
  EXPECT_EQ(tok->inputs(0).name(), "corpus");
  ASSERT_TRUE(Succeed(*tok, "tokenizer").ok());
  for (int i = 0; i < 2; ++i) {
    auto p = AcquireAny();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->ref().stage(), v1::PREPROCESS);
    ASSERT_TRUE(Succeed(*p, "dataset-part").ok());
  }
  auto pjoin = AcquireAny();
  ASSERT_TRUE(pjoin);
  ASSERT_TRUE(Succeed(*pjoin, "dataset").ok());
  auto train = AcquireAny();
  ASSERT_TRUE(train);
  EXPECT_EQ(train->ref().stage(), v1::PRETRAIN);
  EXPECT_EQ(train->rendezvous().world_size(), 1);
  // A checkpoint report becomes a record, an artifact and an event.
  v1::ReportStageRequest report;
  *report.mutable_ref() = train->ref();
  report.add_reports()->mutable_metric()->set_name("train/loss");
  report.mutable_reports(0)->mutable_metric()->set_value(2.5);
  v1::CheckpointRecord* ck = report.add_reports()->mutable_checkpoint();
  ck->set_step(10);
  ck->mutable_artifact()->set_uri("file:///tmp/ck10");
  ASSERT_TRUE(manager_->Report(report).ok());
  EXPECT_EQ(Get(job.id()).latest_metrics().at("train/loss"), 2.5);
  v1::CompleteStageRequest done;
  *done.mutable_ref() = train->ref();
  done.set_success(true);
  ASSERT_TRUE(manager_->Complete(done).ok());
  auto exp = AcquireAny();
  ASSERT_TRUE(exp);
  EXPECT_EQ(exp->ref().stage(), v1::EXPORT);
  bool has_checkpoint = false;
  for (const auto& in : exp->inputs()) has_checkpoint |= in.name() == "checkpoint-10";
  EXPECT_TRUE(has_checkpoint);
  ASSERT_TRUE(Succeed(*exp, "model").ok());
  v1::Job final_job = Get(job.id());
  EXPECT_EQ(final_job.state(), v1::SUCCEEDED);
  for (const auto& stage : final_job.stages()) EXPECT_EQ(stage.state(), v1::SUCCEEDED);
  ExpectDenseEvents(final_job);
}

TEST_F(JobManagerTest, LeaseExpiryRequeuesWithBackoffAndRefusesTheStaleAttempt) {
  v1::Job job = Submit();
  RegisterAgent("a1", {"cpu"});
  auto first = Acquire("a1");
  ASSERT_TRUE(first);
  clock_.Advance(absl::Seconds(11));  // no heartbeat for longer than the ttl
  ASSERT_TRUE(manager_->Tick().ok());
  v1::Job after = Get(job.id());
  const v1::ShardAttempt& shard = after.stages(0).shards(0);
  EXPECT_EQ(shard.state(), v1::QUEUED);
  EXPECT_EQ(shard.failure_cause(), v1::AGENT_LOST);

  // The old agent comes back: told to re-register and to drop its work.
  v1::HeartbeatRequest hb;
  hb.set_agent_id("a1");
  *hb.add_running() = first->ref();
  auto hb_response = manager_->Heartbeat(hb);
  ASSERT_TRUE(hb_response.ok());
  EXPECT_TRUE(hb_response->reregister());
  ASSERT_EQ(hb_response->cancel_size(), 1);

  RegisterAgent("a2", {"cpu"});
  auto other = Acquire("a2");  // shard 1 was never placed; it goes first
  ASSERT_TRUE(other);
  EXPECT_EQ(other->ref().shard_index(), 1);
  RegisterAgent("a3", {"cpu"});
  EXPECT_FALSE(Acquire("a3").has_value());  // shard 0 waits out its backoff
  clock_.Advance(absl::Seconds(5));
  auto retry = Acquire("a3");
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->ref().shard_index(), 0);
  EXPECT_EQ(retry->ref().attempt(), 2);

  // Reports and completion from the expired attempt are refused.
  v1::ReportStageRequest stale;
  *stale.mutable_ref() = first->ref();
  stale.add_reports()->mutable_log()->set_message("late");
  EXPECT_EQ(manager_->Report(stale).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Succeed(*first, "text").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Succeed(*retry, "text").ok());
}

TEST_F(JobManagerTest, SpecErrorsAreNotRetriedAndFailTheJob) {
  v1::Job job = Submit();
  RegisterAgent("a1");
  auto a = Acquire("a1");
  ASSERT_TRUE(a);
  ASSERT_TRUE(Fail(*a, v1::DATA_ERROR).ok());
  v1::Job failed = Get(job.id());
  EXPECT_EQ(failed.state(), v1::FAILED);
  EXPECT_EQ(failed.failure_cause(), v1::DATA_ERROR);
  EXPECT_EQ(failed.stages(0).state(), v1::FAILED);
  EXPECT_EQ(failed.stages(1).state(), v1::CANCELLED);
  EXPECT_EQ(failed.stages(1).failure_cause(), v1::DEPENDENCY_FAILED);
  ExpectDenseEvents(failed);
}

TEST_F(JobManagerTest, RetryableFailuresStopAtTheLimit) {
  v1::Job job = Submit();  // max_attempts: 2
  RegisterAgent("a1", {"cpu"});
  auto a = Acquire("a1");
  ASSERT_TRUE(a);
  ASSERT_TRUE(Fail(*a, v1::WORKER_CRASHED).ok());
  EXPECT_EQ(Get(job.id()).state(), v1::RUNNING);
  std::optional<v1::Assignment> again;
  for (int i = 0; i < 3 && !(again && again->ref().shard_index() == 0); ++i) {
    if (again) {
      ASSERT_TRUE(Succeed(*again, "text").ok());
    }
    clock_.Advance(absl::Seconds(5));
    again = Acquire("a1");
  }
  ASSERT_TRUE(again);
  EXPECT_EQ(again->ref().attempt(), 2);
  ASSERT_TRUE(Fail(*again, v1::WORKER_CRASHED).ok());
  v1::Job failed = Get(job.id());
  EXPECT_EQ(failed.state(), v1::FAILED);
  EXPECT_EQ(failed.failure_cause(), v1::RETRIES_EXHAUSTED);
}

TEST_F(JobManagerTest, GangStartsTogetherAndRestartsTogether) {
  const std::string yaml = R"(name: gang
preprocess:
  from_dataset: /data/ds
tokenizer:
  from: /data/tok/vocab.txt
model:
  preset: bert-tiny
resources:
  accelerator: cuda
  devices: 2
  hosts: 2
  train_pool: gpu
output:
  dir: out
)";
  v1::Job job = Submit(yaml);
  ASSERT_FALSE(job.id().empty());
  EXPECT_EQ(job.stages(0).state(), v1::SKIPPED);
  EXPECT_EQ(job.stages(2).state(), v1::SKIPPED);
  RegisterAgent("g1", {"gpu"}, v1::CUDA, 2);
  EXPECT_FALSE(Acquire("g1").has_value());  // one host is not a gang of two
  RegisterAgent("g2", {"gpu"}, v1::CUDA, 1);
  EXPECT_FALSE(Acquire("g2").has_value());  // g2 lacks room for 2 devices
  RegisterAgent("g3", {"gpu"}, v1::CUDA, 4);
  auto r0 = Acquire("g1");
  auto r1 = Acquire("g3");
  ASSERT_TRUE(r0 && r1);
  EXPECT_EQ(r0->ref().stage(), v1::PRETRAIN);
  EXPECT_EQ(r0->rendezvous().world_size(), 4);
  EXPECT_EQ(r0->rendezvous().local_world_size(), 2);
  EXPECT_NE(r0->rendezvous().node_rank(), r1->rendezvous().node_rank());
  EXPECT_EQ(r0->rendezvous().master_address(), r1->rendezvous().master_address());
  EXPECT_EQ(r0->rendezvous().master_port(), r1->rendezvous().master_port());
  bool has_dataset = false;
  for (const auto& in : r0->inputs()) has_dataset |= in.uri() == "file:///data/ds";
  EXPECT_TRUE(has_dataset);

  ASSERT_TRUE(Fail(*r1, v1::WORKER_CRASHED).ok());
  // The other rank's attempt is no longer live: its heartbeat is told to stop.
  v1::HeartbeatRequest hb;
  hb.set_agent_id("g1");
  *hb.add_running() = r0->ref();
  auto response = manager_->Heartbeat(hb);
  ASSERT_TRUE(response.ok());
  ASSERT_EQ(response->cancel_size(), 1);
  clock_.Advance(absl::Seconds(5));
  auto n0 = Acquire("g1");
  auto n1 = Acquire("g3");
  ASSERT_TRUE(n0 && n1);
  EXPECT_EQ(n0->ref().attempt(), 2);
  EXPECT_EQ(n1->ref().attempt(), 2);
}

TEST_F(JobManagerTest, CancelStopsRunningWork) {
  v1::Job job = Submit();
  RegisterAgent("a1");
  auto a = Acquire("a1");
  ASSERT_TRUE(a);
  auto cancelled = manager_->Cancel(job.id(), "");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::CANCELLED);
  EXPECT_EQ(cancelled->failure_cause(), v1::CANCELLED_BY_USER);
  v1::ReportStageRequest report;
  *report.mutable_ref() = a->ref();
  auto r = manager_->Report(report);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancel());
  v1::HeartbeatRequest hb;
  hb.set_agent_id("a1");
  *hb.add_running() = a->ref();
  auto h = manager_->Heartbeat(hb);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->cancel_size(), 1);
  EXPECT_FALSE(Acquire("a1").has_value());
  EXPECT_EQ(manager_->GetJob("missing").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, RestartKeepsRunningWorkForAgentsThatComeBack) {
  v1::Job job = Submit();
  RegisterAgent("a1", {"cpu"});
  RegisterAgent("a2", {"cpu"});
  auto kept = Acquire("a1");
  auto lost = Acquire("a2");
  ASSERT_TRUE(kept && lost);
  const int64_t seq_before = Get(job.id()).last_event_seq();
  Restart();
  v1::Job reloaded = Get(job.id());
  EXPECT_EQ(reloaded.state(), v1::RUNNING);
  EXPECT_EQ(reloaded.last_event_seq(), seq_before);
  // Agents get the restart grace (20 s), not just the lease ttl (10 s), to
  // reconnect: after 15 s nothing is lost yet.
  clock_.Advance(absl::Seconds(15));
  ASSERT_TRUE(manager_->Tick().ok());
  EXPECT_EQ(Get(job.id()).last_event_seq(), seq_before);
  // a1 reconnects and still runs its piece; a2 never comes back.
  v1::AgentInfo agent;
  agent.set_id("a1");
  agent.add_pools("cpu");
  auto reg = manager_->Register(agent);
  ASSERT_TRUE(reg.ok());
  ASSERT_EQ(reg->live_assignments_size(), 1);
  EXPECT_EQ(reg->live_assignments(0).attempt(), kept->ref().attempt());
  for (int i = 0; i < 6; ++i) {
    clock_.Advance(absl::Seconds(2));
    v1::HeartbeatRequest hb;
    hb.set_agent_id("a1");
    *hb.add_running() = kept->ref();
    auto h = manager_->Heartbeat(hb);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->cancel_size(), 0);
    ASSERT_TRUE(manager_->Tick().ok());
  }
  v1::Job now = Get(job.id());
  EXPECT_EQ(now.stages(0).shards(kept->ref().shard_index()).state(), v1::RUNNING);
  EXPECT_EQ(now.stages(0).shards(lost->ref().shard_index()).state(), v1::QUEUED);
  EXPECT_EQ(now.stages(0).shards(lost->ref().shard_index()).failure_cause(), v1::AGENT_LOST);
  EXPECT_TRUE(Succeed(*kept, "text").ok());
  ExpectDenseEvents(Get(job.id()));
}

TEST_F(JobManagerTest, PieceMissingFromHeartbeatsIsLost) {
  v1::Job job = Submit();
  RegisterAgent("a1", {"cpu"});
  auto a = Acquire("a1");
  ASSERT_TRUE(a);
  for (int i = 0; i < 7; ++i) {
    clock_.Advance(absl::Seconds(2));
    v1::HeartbeatRequest hb;
    hb.set_agent_id("a1");  // lists nothing: the agent restarted and lost it
    ASSERT_TRUE(manager_->Heartbeat(hb).ok());
  }
  EXPECT_EQ(Get(job.id()).stages(0).shards(0).state(), v1::QUEUED);
}

TEST_F(JobManagerTest, WatchersGetCommittedEventsLive) {
  auto sub = bus_.Subscribe("nobody");
  v1::Job job = Submit();
  auto live = bus_.Subscribe(job.id());
  RegisterAgent("a1");
  ASSERT_TRUE(Acquire("a1"));
  bool lagged = true;
  auto events = live->Next(absl::Seconds(1), &lagged);
  EXPECT_FALSE(lagged);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().seq(), job.last_event_seq() + 1);
  EXPECT_TRUE(sub->Next(absl::ZeroDuration(), &lagged).empty());
}

TEST_F(JobManagerTest, ListJobsFiltersAndPages) {
  for (int i = 0; i < 5; ++i) {
    Submit();
    clock_.Advance(absl::Seconds(1));
  }
  v1::ListJobsRequest request;
  request.set_page_size(2);
  auto page1 = manager_->ListJobs(request);
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->jobs_size(), 2);
  EXPECT_GT(page1->jobs(0).id(), page1->jobs(1).id());  // newest first
  request.set_page_token(page1->next_page_token());
  auto page2 = manager_->ListJobs(request);
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(page2->jobs_size(), 2);
  EXPECT_LT(page2->jobs(0).id(), page1->jobs(1).id());
  request.clear_page_token();
  request.set_page_size(0);
  request.add_states(v1::SUCCEEDED);
  EXPECT_EQ(manager_->ListJobs(request)->jobs_size(), 0);
}

TEST_F(JobManagerTest, FinishedJobsLeaveMemoryAndAreReadFromTheStore) {
  v1::Job done = Submit();
  v1::Job running = Submit();
  ASSERT_TRUE(manager_->Cancel(done.id(), "").ok());
  std::vector<v1::Job> active = manager_->ActiveJobs();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id(), running.id());
  // Still answered, from the store.
  EXPECT_EQ(Get(done.id()).state(), v1::CANCELLED);
  EXPECT_TRUE(*manager_->IsFinished(done.id()));
  EXPECT_FALSE(*manager_->IsFinished(running.id()));
  EXPECT_TRUE(absl::IsNotFound(manager_->GetJob("j-nope").status()));
  // Cancelling again returns the stored job unchanged.
  auto again = manager_->Cancel(done.id(), "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->last_event_seq(), Get(done.id()).last_event_seq());
  // Listing sees both; the active-only listing sees one.
  v1::ListJobsRequest all;
  EXPECT_EQ(manager_->ListJobs(all)->jobs_size(), 2);
  v1::ListJobsRequest unfinished;
  unfinished.add_states(v1::QUEUED);
  unfinished.add_states(v1::RUNNING);
  auto listed = manager_->ListJobs(unfinished);
  ASSERT_EQ(listed->jobs_size(), 1);
  EXPECT_EQ(listed->jobs(0).id(), running.id());
  v1::ListJobsRequest cancelled;
  cancelled.add_states(v1::CANCELLED);
  ASSERT_EQ(manager_->ListJobs(cancelled)->jobs_size(), 1);
  // After a restart only the unfinished job is loaded, and both still answer.
  Restart();
  EXPECT_EQ(manager_->ActiveJobs().size(), 1u);
  EXPECT_EQ(Get(done.id()).state(), v1::CANCELLED);
  // An idempotency key that names a finished job still returns it.
  v1::Job keyed = Submit(kSpec, "k-finished");
  ASSERT_TRUE(manager_->Cancel(keyed.id(), "").ok());
  v1::SubmitJobRequest again_request;
  again_request.set_spec_yaml(kSpec);
  again_request.set_idempotency_key("k-finished");
  auto resubmitted = manager_->Submit(again_request, "alice");
  ASSERT_TRUE(resubmitted.ok()) << resubmitted.status();
  EXPECT_TRUE(resubmitted->already_existed);
  EXPECT_EQ(resubmitted->job.state(), v1::CANCELLED);
}

TEST_F(JobManagerTest, ReportsAppendEventsWithoutRewritingTheJobAndSurviveARestart) {
  v1::Job job = Submit();
  RegisterAgent("a1");
  auto piece = Acquire("a1");
  ASSERT_TRUE(piece.has_value());
  auto stored_before = store_->GetJob(job.id());
  ASSERT_TRUE(stored_before.ok() && stored_before->has_value());
  for (int step = 1; step <= 3; ++step) {
    v1::ReportStageRequest report;
    *report.mutable_ref() = piece->ref();
    v1::MetricPoint* m = report.add_reports()->mutable_metric();
    m->set_name("prepare/docs_per_second");
    m->set_value(step * 10.0);
    report.add_reports()->mutable_progress()->set_done(step);
    ASSERT_TRUE(manager_->Report(report).ok());
  }
  // The stored job record was not rewritten; the events were appended.
  auto stored_after = store_->GetJob(job.id());
  EXPECT_EQ((*stored_after)->last_event_seq(), (*stored_before)->last_event_seq());
  const v1::Job live = Get(job.id());
  EXPECT_EQ(live.last_event_seq(), (*stored_before)->last_event_seq() + 6);
  EXPECT_EQ(live.latest_metrics().at("prepare/docs_per_second"), 30.0);
  ExpectDenseEvents(live);
  // A restart replays them: the same seq, metrics and progress, and new
  // events continue the sequence.
  Restart();
  const v1::Job reloaded = Get(job.id());
  EXPECT_EQ(reloaded.last_event_seq(), live.last_event_seq());
  EXPECT_EQ(reloaded.latest_metrics().at("prepare/docs_per_second"), 30.0);
  EXPECT_EQ(reloaded.stages(0).progress().done(), 3);
  RegisterAgent("a1");
  ASSERT_TRUE(manager_->Cancel(job.id(), "").ok());
  ExpectDenseEvents(Get(job.id()));
}

TEST_F(JobManagerTest, ManyReportsRewriteTheJobNowAndThen) {
  JobManagerOptions options;
  v1::Job job = Submit();
  RegisterAgent("a1");
  auto piece = Acquire("a1");
  ASSERT_TRUE(piece.has_value());
  v1::ReportStageRequest report;
  *report.mutable_ref() = piece->ref();
  for (int i = 0; i < 300; ++i) report.add_reports()->mutable_progress()->set_done(i);
  for (int batch = 0; batch < 5; ++batch) ASSERT_TRUE(manager_->Report(report).ok());
  // The 4th batch passed max_unsaved_events (1000) and rewrote the record; the 5th did not.
  auto stored = store_->GetJob(job.id());
  EXPECT_GE((*stored)->last_event_seq(), options.max_unsaved_events);
  EXPECT_LT((*stored)->last_event_seq(), Get(job.id()).last_event_seq());
}

TEST_F(JobManagerTest, ListAgentsNamesTheirRunningPieces) {
  Submit(std::string(kSpec) + "priority: 0\n");
  RegisterAgent("a1");
  ASSERT_TRUE(Acquire("a1").has_value());
  RegisterAgent("a2", {"gpu"});
  for (const v1::AgentInfo& agent : manager_->ListAgents("")) {
    if (agent.id() == "a1") {
      ASSERT_EQ(agent.assignment_ids_size(), 1);
      EXPECT_NE(agent.assignment_ids(0).find("/prepare/0#1"), std::string::npos)
          << agent.assignment_ids(0);
    } else {
      EXPECT_EQ(agent.assignment_ids_size(), 0);
    }
    EXPECT_TRUE(agent.healthy());
  }
  EXPECT_EQ(manager_->ListAgents("gpu").size(), 1u);
  EXPECT_EQ(manager_->ListAgents("nowhere").size(), 0u);
}

TEST_F(JobManagerTest, ListJobsPagesEndBeforeTheyGrowPastAFewMegabytes) {
  // A spec may be up to 1 MiB (here ~900 KB of comments): pages of such jobs
  // stop at ~3 MiB whatever the page size asked for, and still reach every job.
  const std::string padded = std::string(kSpec) + "#" + std::string(900 << 10, 'x') + "\n";
  for (int i = 0; i < 5; ++i) {
    Submit(padded);
    clock_.Advance(absl::Seconds(1));
  }
  v1::ListJobsRequest request;
  request.set_page_size(50);
  int pages = 0, jobs = 0;
  for (;;) {
    auto page = manager_->ListJobs(request);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->ByteSizeLong(), size_t{3} << 20);
    EXPECT_GE(page->jobs_size(), 1);
    ++pages;
    jobs += page->jobs_size();
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(jobs, 5);
  EXPECT_GE(pages, 2);
}

// A job no live agent could ever run is marked with the reason (and an
// event) instead of waiting silently; the mark goes once one could.
TEST_F(JobManagerTest, AJobNoAgentCouldRunSaysWhyAndClearsWhenOneRegisters) {
  constexpr char kGaudi[] = R"(name: article
model:
  preset: bert-tiny
tokenizer:
  from: /data/tok
preprocess:
  from_dataset: /data/ds
resources:
  accelerator: hpu
  devices: 8
  train_pool: gaudi
output:
  dir: out
)";
  const v1::Job job = Submit(kGaudi);
  ASSERT_FALSE(job.id().empty());
  auto waiting_reason = [&] {
    const v1::Job now = Get(job.id());
    for (const v1::Stage& stage : now.stages()) {
      if (stage.kind() == v1::PRETRAIN) return stage.waiting_reason();
    }
    return std::string("no PRETRAIN stage");
  };
  ASSERT_TRUE(manager_->Tick().ok());
  EXPECT_NE(waiting_reason().find("no live agent is registered"), std::string::npos)
      << waiting_reason();

  RegisterAgent("a1", {"cpu", "train"});
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(manager_->Tick().ok());
  EXPECT_NE(waiting_reason().find("pool 'gaudi'"), std::string::npos) << waiting_reason();
  EXPECT_FALSE(Acquire("a1").has_value());

  RegisterAgent("g-small", {"gaudi"}, v1::HPU, 4);  // the pool, but half the devices
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(manager_->Tick().ok());
  EXPECT_NE(waiting_reason().find("8 HPU accelerators on one host"), std::string::npos)
      << waiting_reason();
  EXPECT_NE(waiting_reason().find("at most 4"), std::string::npos) << waiting_reason();

  RegisterAgent("g-full", {"gaudi"}, v1::HPU, 8);
  auto placed = Acquire("g-full");
  ASSERT_TRUE(placed.has_value());
  EXPECT_EQ(placed->ref().stage(), v1::PRETRAIN);
  EXPECT_EQ(waiting_reason(), "") << "running: no longer waiting";
}

// An agent that goes away takes its capacity with it: the job waits with a
// reason again until one comes back.
TEST_F(JobManagerTest, WaitingReasonCountsOnlyLiveAgents) {
  const v1::Job job = Submit();
  RegisterAgent("a1", {"train"});  // no agent serves the prep pool "cpu"
  ASSERT_TRUE(manager_->Tick().ok());
  const v1::Job marked = Get(job.id());
  ASSERT_GT(marked.stages_size(), 0);
  EXPECT_NE(marked.stages(0).waiting_reason().find("pool 'cpu'"), std::string::npos)
      << marked.stages(0).waiting_reason();
  EXPECT_NE(marked.stages(0).waiting_reason().find("pools served: train"), std::string::npos)
      << marked.stages(0).waiting_reason();
  RegisterAgent("a2", {"cpu"});
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(manager_->Tick().ok());
  EXPECT_EQ(Get(job.id()).stages(0).waiting_reason(), "");
}

}  // namespace
}  // namespace bert::server
