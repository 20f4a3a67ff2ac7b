// The lifecycle verbs over real RPCs to an in-process bertd, with the test
// playing the agent: PauseJob tells the agent (heartbeat and report answers),
// the pause completes with PAUSED_BY_USER, the job is PAUSED and no agent
// holds a piece; ResumeJob offers the pause's checkpoint. RetryJob of a
// cancelled job keeps its finished stages and offers its newest checkpoint.
// DeleteJob removes files, then records; a restart (the collector) finishes
// an interrupted delete, deletes finished jobs past their retention, and
// removes uploaded inputs no job references.
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/controller.h"
#include "server/time_util.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "storage/store_batch.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {
namespace fs = std::filesystem;

// Starts at PRETRAIN (dataset and tokenizer from the spec).
constexpr char kSpec[] = R"(name: lifecycle
preprocess:
  from_dataset: ds
tokenizer:
  from: tok/tokenizer.json
model:
  preset: bert-tiny
)";

void WriteCheckpointDir(const fs::path& dir, int64_t step) {
  fs::create_directories(dir);
  std::ofstream(dir / "model.pt") << "weights of step " << step << std::string(1000, 'w');
}

class LifecycleRpcTest : public ::testing::Test {
 protected:
  void Start(absl::Duration finished_job_retention = absl::ZeroDuration(),
             const std::string& tokens_file = "") {
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = data_dir_.string();
    options.tokens_file = tokens_file;
    options.check_spec_paths = false;
    options.finished_job_retention = finished_job_retention;
    auto c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(c).value();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(controller_->port()),
                                   grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
    agents_ = v1::AgentService::NewStub(channel_);
  }
  void TearDown() override { controller_.reset(); }

  std::string Submit() {
    grpc::ClientContext context;
    v1::SubmitJobRequest submit;
    submit.set_spec_yaml(kSpec);
    v1::SubmitJobResponse submitted;
    grpc::Status s = jobs_->SubmitJob(&context, submit, &submitted);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return submitted.job().id();
  }
  void Register() {
    grpc::ClientContext context;
    v1::RegisterRequest reg;
    reg.mutable_agent()->set_id("a1");
    reg.mutable_agent()->add_pools("cpu");
    reg.mutable_agent()->add_pools("train");
    v1::RegisterResponse registered;
    grpc::Status s = agents_->Register(&context, reg, &registered);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::optional<v1::Assignment> Acquire(int64_t wait_ms = 2000) {
    grpc::ClientContext context;
    v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id("a1");
    acquire.set_wait_ms(wait_ms);
    v1::AcquireAssignmentResponse acquired;
    grpc::Status s = agents_->AcquireAssignment(&context, acquire, &acquired);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!acquired.has_assignment()) return std::nullopt;
    return acquired.assignment();
  }
  // A checkpoint on the controller's disk, reported as file:// (a shared filesystem).
  v1::ReportStageResponse ReportCheckpoint(const v1::AssignmentRef& ref, int64_t step) {
    const std::string name = absl::StrCat("checkpoint-", step);
    const fs::path dir = artifact_root_ / ref.job_id() / "pretrain" / name;
    WriteCheckpointDir(dir, step);
    grpc::ClientContext context;
    v1::ReportStageRequest request;
    *request.mutable_ref() = ref;
    v1::CheckpointRecord* c = request.add_reports()->mutable_checkpoint();
    c->set_step(step);
    v1::Artifact* a = c->mutable_artifact();
    a->set_id(absl::StrCat(ref.job_id(), "/pretrain/", name));
    a->set_name(name);
    a->set_is_directory(true);
    a->set_uri("file://" + dir.string());
    v1::ReportStageResponse response;
    grpc::Status s = agents_->ReportStage(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  v1::HeartbeatResponse Heartbeat(const std::vector<v1::AssignmentRef>& running) {
    grpc::ClientContext context;
    v1::HeartbeatRequest request;
    request.set_agent_id("a1");
    for (const v1::AssignmentRef& r : running) *request.add_running() = r;
    v1::HeartbeatResponse response;
    grpc::Status s = agents_->Heartbeat(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  grpc::Status Complete(const v1::AssignmentRef& ref, bool success,
                        v1::FailureCause cause = v1::FAILURE_CAUSE_UNSPECIFIED) {
    grpc::ClientContext context;
    v1::CompleteStageRequest request;
    *request.mutable_ref() = ref;
    request.set_success(success);
    request.set_failure_cause(cause);
    v1::CompleteStageResponse response;
    return agents_->CompleteStage(&context, request, &response);
  }
  absl::StatusOr<v1::Job> Get(const std::string& id) {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_job_id(id);
    v1::Job job;
    grpc::Status s = jobs_->GetJob(&context, request, &job);
    if (!s.ok())
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return job;
  }
  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (v1::JobService::Stub::*method)(grpc::ClientContext*,
                                                                 const Request&, Response*),
                    const std::string& id, Response* response, const std::string& token = "") {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    Request request;
    request.set_job_id(id);
    return (jobs_.get()->*method)(&context, request, response);
  }
  int AgentPieces() {
    grpc::ClientContext context;
    v1::ListAgentsResponse response;
    EXPECT_TRUE(jobs_->ListAgents(&context, v1::ListAgentsRequest(), &response).ok());
    int pieces = 0;
    for (const v1::AgentInfo& a : response.agents()) pieces += a.assignment_ids_size();
    return pieces;
  }
  static bool HasInput(const v1::Assignment& a, const std::string& name) {
    for (const v1::Artifact& in : a.inputs()) {
      if (in.name() == name) return true;
    }
    return false;
  }
  // Every store key that names `job` (opened after the controller stopped).
  std::vector<std::string> StoreKeysOf(const std::string& job) {
    controller_.reset();
    auto store = storage::Store::Open((data_dir_ / "db").string());
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {"<no store>"};
    std::vector<std::string> found;
    for (const std::string& prefix :
         {storage::keys::Job(job), storage::keys::EventPrefix(job),
          storage::keys::MetricPrefix(job), storage::keys::CheckpointPrefix(job),
          storage::keys::JobArtifactPrefix(job)}) {
      auto keys = (*store)->KeysWithPrefix(prefix, 10);
      EXPECT_TRUE(keys.ok()) << keys.status();
      if (keys.ok()) found.insert(found.end(), keys->begin(), keys->end());
    }
    return found;
  }

  const bert::testing::TempDir temp_dir_{"lifecycle_"};
  const fs::path dir_ = temp_dir_.path();
  const fs::path data_dir_ = dir_ / "data";
  const fs::path artifact_root_ = data_dir_ / "artifacts";
  std::unique_ptr<Controller> controller_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
};

TEST_F(LifecycleRpcTest, PauseCheckpointsReleasesTheAgentAndResumeOffersThatCheckpoint) {
  Start();
  const std::string job = Submit();
  Register();
  std::optional<v1::Assignment> first = Acquire();
  ASSERT_TRUE(first.has_value());
  const v1::AssignmentRef ref = first->ref();
  ASSERT_EQ(ref.stage(), v1::PRETRAIN);
  EXPECT_FALSE(ReportCheckpoint(ref, 2).pause());

  v1::Job pausing;
  ASSERT_TRUE(Call(&v1::JobService::Stub::PauseJob, job, &pausing).ok());
  EXPECT_EQ(pausing.state(), v1::RUNNING);
  EXPECT_TRUE(pausing.pause_requested());
  // The agent learns it from its heartbeat and from its next report's answer.
  const v1::HeartbeatResponse beat = Heartbeat({ref});
  ASSERT_EQ(beat.pause_size(), 1);
  EXPECT_EQ(beat.pause(0).attempt(), ref.attempt());
  EXPECT_TRUE(beat.cancel().empty());
  EXPECT_TRUE(ReportCheckpoint(ref, 3).pause()) << "the pause's own checkpoint";
  ASSERT_TRUE(Complete(ref, false, v1::PAUSED_BY_USER).ok());

  absl::StatusOr<v1::Job> paused = Get(job);
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(paused->state(), v1::PAUSED);
  EXPECT_FALSE(paused->pause_requested());
  EXPECT_EQ(paused->stages(3).kind(), v1::PRETRAIN);
  EXPECT_EQ(paused->stages(3).state(), v1::PAUSED);
  EXPECT_EQ(AgentPieces(), 0) << "no devices held";
  EXPECT_FALSE(Acquire(300).has_value()) << "a paused job places nothing";
  EXPECT_TRUE(Heartbeat({}).pause().empty());

  v1::Job resumed;
  ASSERT_TRUE(Call(&v1::JobService::Stub::ResumeJob, job, &resumed).ok());
  EXPECT_EQ(resumed.state(), v1::QUEUED);
  std::optional<v1::Assignment> second = Acquire();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->ref().stage(), v1::PRETRAIN);
  EXPECT_GT(second->ref().attempt(), ref.attempt());
  EXPECT_TRUE(HasInput(*second, "checkpoint-3")) << second->DebugString();
  EXPECT_TRUE(Get(job)->state() == v1::RUNNING);
  ASSERT_TRUE(Complete(second->ref(), true).ok());
  std::optional<v1::Assignment> exported = Acquire();
  ASSERT_TRUE(exported.has_value());
  EXPECT_EQ(exported->ref().stage(), v1::EXPORT);
  EXPECT_TRUE(HasInput(*exported, "checkpoint-3"));

  // A running job cannot be deleted; resume of a running one is refused.
  v1::DeleteJobResponse deleted;
  EXPECT_EQ(Call(&v1::JobService::Stub::DeleteJob, job, &deleted).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Call(&v1::JobService::Stub::ResumeJob, job, &resumed).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(LifecycleRpcTest, RetryOfACancelledJobKeepsItsStagesAndResumesFromItsCheckpoint) {
  Start();
  const std::string job = Submit();
  Register();
  std::optional<v1::Assignment> first = Acquire();
  ASSERT_TRUE(first.has_value());
  ReportCheckpoint(first->ref(), 4);
  v1::Job retried;
  EXPECT_EQ(Call(&v1::JobService::Stub::RetryJob, job, &retried).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION)
      << "a running job is not retried";
  {
    grpc::ClientContext context;
    v1::CancelJobRequest cancel;
    cancel.set_job_id(job);
    v1::Job cancelled;
    ASSERT_TRUE(jobs_->CancelJob(&context, cancel, &cancelled).ok());
    ASSERT_EQ(cancelled.state(), v1::CANCELLED);
  }
  EXPECT_EQ(Heartbeat({first->ref()}).cancel_size(), 1);

  ASSERT_TRUE(Call(&v1::JobService::Stub::RetryJob, job, &retried).ok());
  EXPECT_EQ(retried.state(), v1::QUEUED);
  EXPECT_EQ(retried.user_retries(), 1);
  EXPECT_EQ(retried.failure_cause(), v1::FAILURE_CAUSE_UNSPECIFIED);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(retried.stages(i).state(), v1::SKIPPED) << i;
  EXPECT_EQ(retried.stages(3).state(), v1::QUEUED);
  // The old attempt's reports are refused.
  {
    grpc::ClientContext context;
    v1::ReportStageRequest request;
    *request.mutable_ref() = first->ref();
    request.add_reports()->mutable_log()->set_message("late");
    v1::ReportStageResponse response;
    EXPECT_FALSE(agents_->ReportStage(&context, request, &response).ok());
  }
  std::optional<v1::Assignment> again = Acquire();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->ref().stage(), v1::PRETRAIN);
  EXPECT_GT(again->ref().attempt(), first->ref().attempt());
  EXPECT_TRUE(HasInput(*again, "checkpoint-4")) << again->DebugString();
}

TEST_F(LifecycleRpcTest, DeleteRemovesFilesThenEveryRecord) {
  Start();
  const std::string job = Submit();
  const std::string other = Submit();
  Register();
  std::optional<v1::Assignment> first = Acquire();
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->ref().job_id(), job);
  ReportCheckpoint(first->ref(), 1);
  ReportCheckpoint(first->ref(), 2);
  ASSERT_TRUE(Complete(first->ref(), false, v1::DATA_ERROR).ok());  // never retried
  ASSERT_EQ(Get(job)->state(), v1::FAILED);
  fs::create_directories(artifact_root_ / ".partial" / job / "pretrain");
  std::ofstream(artifact_root_ / ".partial" / job / "pretrain" / "half") << "half an upload";
  ASSERT_TRUE(fs::exists(artifact_root_ / job / "pretrain" / "checkpoint-2" / "model.pt"));

  v1::DeleteJobResponse deleted;
  grpc::Status s = Call(&v1::JobService::Stub::DeleteJob, job, &deleted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(deleted.job_id(), job);
  EXPECT_EQ(deleted.files_deleted(), 3);
  EXPECT_GT(deleted.bytes_freed(), 2000);
  EXPECT_FALSE(fs::exists(artifact_root_ / job));
  EXPECT_FALSE(fs::exists(artifact_root_ / ".partial" / job));
  EXPECT_EQ(Get(job).status().code(), absl::StatusCode::kNotFound);
  {
    grpc::ClientContext context;
    v1::ListJobsResponse listed;
    ASSERT_TRUE(jobs_->ListJobs(&context, v1::ListJobsRequest(), &listed).ok());
    ASSERT_EQ(listed.jobs_size(), 1);
    EXPECT_EQ(listed.jobs(0).id(), other);
  }
  EXPECT_EQ(Call(&v1::JobService::Stub::DeleteJob, job, &deleted).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A paused job may be deleted too: the other one, paused while queued.
  v1::Job paused;
  ASSERT_TRUE(Call(&v1::JobService::Stub::PauseJob, other, &paused).ok());
  EXPECT_EQ(paused.state(), v1::PAUSED);
  ASSERT_TRUE(Call(&v1::JobService::Stub::DeleteJob, other, &deleted).ok());
  EXPECT_FALSE(Acquire(300).has_value());
  EXPECT_EQ(StoreKeysOf(job), std::vector<std::string>{});
  EXPECT_EQ(StoreKeysOf(other), std::vector<std::string>{});
}

// CancelJob's rule: a submitter acts on its own jobs only, an admin on all.
TEST_F(LifecycleRpcTest, OnlyTheSubmitterOrAnAdminMayActOnAJob) {
  const std::string alice = "alice-token-0123456789", bob = "bob-token-0123456789ab",
                    root = "root-token-0123456789", viewer = "view-token-0123456789";
  fs::create_directories(dir_);
  std::ofstream(dir_ / "tokens") << alice << " submitter alice\n"
                                 << bob << " submitter bob\n"
                                 << root << " admin root\n"
                                 << viewer << " viewer eve\n";
  Start(absl::ZeroDuration(), (dir_ / "tokens").string());
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + alice);
  v1::SubmitJobRequest submit;
  submit.set_spec_yaml(kSpec);
  v1::SubmitJobResponse submitted;
  ASSERT_TRUE(jobs_->SubmitJob(&context, submit, &submitted).ok());
  const std::string job = submitted.job().id();

  v1::Job out;
  for (const std::string& token : {bob, viewer}) {
    EXPECT_EQ(Call(&v1::JobService::Stub::PauseJob, job, &out, token).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(Call(&v1::JobService::Stub::ResumeJob, job, &out, token).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(Call(&v1::JobService::Stub::RetryJob, job, &out, token).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    v1::DeleteJobResponse deleted;
    EXPECT_EQ(Call(&v1::JobService::Stub::DeleteJob, job, &deleted, token).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  ASSERT_TRUE(Call(&v1::JobService::Stub::PauseJob, job, &out, alice).ok());
  EXPECT_EQ(out.state(), v1::PAUSED);
  ASSERT_TRUE(Call(&v1::JobService::Stub::ResumeJob, job, &out, root).ok());
  EXPECT_EQ(out.state(), v1::QUEUED);
  ASSERT_TRUE(Call(&v1::JobService::Stub::PauseJob, job, &out, root).ok());
  v1::DeleteJobResponse deleted;
  EXPECT_TRUE(Call(&v1::JobService::Stub::DeleteJob, job, &deleted, alice).ok());
}

// A crash after delete_requested was written and some files went: the
// startup pass finishes the delete. Also: a finished job past the retention
// goes, a newer one stays; an uploaded input only the deleted job used goes,
// one another job uses stays.
TEST_F(LifecycleRpcTest, TheCollectorFinishesInterruptedDeletesAndAppliesRetention) {
  const std::string interrupted = "j-20260101-000000000-aaaa";
  const std::string expired = "j-20260101-000000000-bbbb";
  const std::string recent = "j-20260101-000000000-cccc";
  const std::string only_mine(64, 'a'), shared(64, 'b');
  {
    fs::create_directories(artifact_root_);
    auto store = storage::Store::Open((data_dir_ / "db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    storage::StoreBatch batch;
    auto job_record = [&](const std::string& id, absl::Time finished) {
      v1::Job record;
      record.set_id(id);
      record.set_name(id);
      record.set_state(v1::SUCCEEDED);
      *record.mutable_finished_at() = ToProto(finished);
      record.set_last_event_seq(1);
      v1::Event event;
      event.set_job_id(id);
      event.set_seq(1);
      event.mutable_metric()->set_name("train/loss");
      event.mutable_metric()->set_value(1.5);
      batch.PutEvent(event);
      v1::CheckpointRecord c;
      c.set_job_id(id);
      c.set_step(5);
      c.mutable_artifact()->set_id(id + "/pretrain/checkpoint-5");
      c.mutable_artifact()->set_uri("bertd://" + id + "/pretrain/checkpoint-5");
      batch.PutCheckpoint(c);
      batch.PutArtifact(c.artifact());
      WriteCheckpointDir(artifact_root_ / c.artifact().id(), 5);
      return record;
    };
    v1::Job a = job_record(interrupted, absl::Now());
    a.set_delete_requested(true);
    a.add_input_files()->set_sha256(only_mine);
    a.add_input_files()->set_sha256(shared);
    fs::remove_all(artifact_root_ / interrupted / "pretrain" / "checkpoint-5" / "model.pt");
    batch.PutJob(a);
    batch.PutJob(job_record(expired, absl::Now() - absl::Hours(2)));
    v1::Job c = job_record(recent, absl::Now());
    c.add_input_files()->set_sha256(shared);
    batch.PutJob(c);
    for (const std::string& sha : {only_mine, shared}) {
      v1::Artifact input;
      input.set_id("inputs/" + sha);
      input.set_uri("bertd://inputs/" + sha);
      *input.mutable_created_at() = ToProto(absl::Now() - absl::Hours(3));
      batch.PutArtifact(input);
      fs::create_directories(artifact_root_ / "inputs");
      std::ofstream(artifact_root_ / "inputs" / sha) << "corpus " << sha;
    }
    ASSERT_TRUE((*store)->Write(batch).ok());
  }
  Start(/*finished_job_retention=*/absl::Hours(1));
  EXPECT_EQ(Get(interrupted).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Get(expired).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Get(recent).ok());
  EXPECT_FALSE(fs::exists(artifact_root_ / interrupted));
  EXPECT_FALSE(fs::exists(artifact_root_ / expired));
  EXPECT_TRUE(fs::exists(artifact_root_ / recent / "pretrain" / "checkpoint-5" / "model.pt"));
  EXPECT_FALSE(fs::exists(artifact_root_ / "inputs" / only_mine));
  EXPECT_TRUE(fs::exists(artifact_root_ / "inputs" / shared));
  EXPECT_EQ(StoreKeysOf(interrupted), std::vector<std::string>{});
  EXPECT_EQ(StoreKeysOf(expired), std::vector<std::string>{});
  EXPECT_EQ(StoreKeysOf(recent).size(), 5u) << "job, event, metric, checkpoint, artifact";
  auto store = storage::Store::Open((data_dir_ / "db").string());
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE((*store)->GetArtifact("inputs/" + only_mine)->has_value());
  EXPECT_TRUE((*store)->GetArtifact("inputs/" + shared)->has_value());
}

}  // namespace
}  // namespace bert::server
