// The agent trust boundary over real RPCs with valid tokens: an agent token
// acts only as its own agent id, reports and uploads only its own piece's
// artifacts, fetches only hashed artifacts of jobs it runs from under the
// controller's roots (no file:// escape, no symbolic link out), cannot delete
// another job's artifacts, and a full disk fails an upload cleanly. Also:
// reflection is served only without a tokens file.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "server/controller.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {
namespace fs = std::filesystem;

constexpr char kAdmin[] = "admin-token-0123456789";
constexpr char kSubmitter[] = "submit-token-0123456789";
constexpr char kAgent1[] = "agent-a1-token-0123456789";
constexpr char kAgent2[] = "agent-a2-token-0123456789";
constexpr char kPool[] = "agent-pool-token-0123456";

constexpr char kTokens[] =
    "admin-token-0123456789 admin root\n"
    "submit-token-0123456789 submitter alice\n"
    "agent-a1-token-0123456789 agent a1\n"
    "agent-a2-token-0123456789 agent a2\n"
    "agent-pool-token-0123456 agent pool-*\n";

constexpr char kSpec[] = R"(name: trust
corpus:
  sources:
    - paths: [data/*.txt]
      format: text
model:
  preset: bert-tiny
output:
  dir: out
)";

constexpr char kSecret[] = "TOP-SECRET-BYTES-OF-THE-CONTROLLER";

v1::ArtifactChunk Chunk(const std::string& id, int64_t offset, const std::string& data) {
  v1::ArtifactChunk c;
  c.set_artifact_id(id);
  c.set_offset(offset);
  c.set_data(data);
  c.set_chunk_sha256(Sha256Hex(data));
  return c;
}

class TrustBoundaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFileAtomically((dir_ / "tokens.txt").string(), kTokens).ok());
    ASSERT_TRUE(WriteFileAtomically(secret_, kSecret).ok());
  }
  void TearDown() override { controller_.reset(); }

  // Starts the controller; with `jobs`, job A runs its prepare piece on a1
  // and job B on a2.
  void Start(bool jobs = true, bool tokens = true) {
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = data_dir_.string();
    if (tokens) options.tokens_file = (dir_ / "tokens.txt").string();
    options.check_spec_paths = false;
    auto c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(c).value();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(controller_->port()),
                                   grpc::InsecureChannelCredentials());
    agents_ = v1::AgentService::NewStub(channel_);
    jobs_ = v1::JobService::NewStub(channel_);
    if (!jobs) return;
    a_ = RunJobOn("a1", kAgent1);
    b_ = RunJobOn("a2", kAgent2);
    ASSERT_NE(a_.job_id(), b_.job_id());
  }

  static void Auth(grpc::ClientContext* context, const char* token) {
    context->AddMetadata("authorization", std::string("Bearer ") + token);
  }

  // Submits a job, registers `agent` and acquires the job's prepare piece.
  v1::AssignmentRef RunJobOn(const std::string& agent, const char* token) {
    grpc::ClientContext c1;
    Auth(&c1, kSubmitter);
    v1::SubmitJobRequest submit;
    submit.set_spec_yaml(kSpec);
    v1::SubmitJobResponse submitted;
    grpc::Status s = jobs_->SubmitJob(&c1, submit, &submitted);
    EXPECT_TRUE(s.ok()) << s.error_message();
    grpc::ClientContext c2;
    Auth(&c2, token);
    v1::RegisterRequest reg;
    reg.mutable_agent()->set_id(agent);
    reg.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse registered;
    s = agents_->Register(&c2, reg, &registered);
    EXPECT_TRUE(s.ok()) << s.error_message();
    grpc::ClientContext c3;
    Auth(&c3, token);
    v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id(agent);
    acquire.set_wait_ms(5000);
    v1::AcquireAssignmentResponse acquired;
    s = agents_->AcquireAssignment(&c3, acquire, &acquired);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(acquired.has_assignment());
    EXPECT_EQ(acquired.assignment().ref().job_id(), submitted.job().id());
    return acquired.assignment().ref();
  }

  grpc::Status Upload(const char* token, const v1::AssignmentRef& ref, const std::string& id,
                      const std::string& data, v1::Artifact* out) {
    v1::Artifact header;
    header.set_id(id);
    header.set_name(fs::path(id).filename().string());
    header.set_size_bytes(static_cast<int64_t>(data.size()));
    header.set_sha256(Sha256Hex(data));
    grpc::ClientContext context;
    Auth(&context, token);
    auto writer = agents_->UploadArtifact(&context, out);
    constexpr size_t kChunk = 256 << 10;
    for (size_t at = 0; at == 0 || at < data.size(); at += kChunk) {
      v1::ArtifactChunk chunk = Chunk(id, static_cast<int64_t>(at), data.substr(at, kChunk));
      if (at == 0) {
        *chunk.mutable_artifact() = header;
        *chunk.mutable_ref() = ref;
      }
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  grpc::Status Download(const char* token, const std::string& id, std::string* data) {
    grpc::ClientContext context;
    Auth(&context, token);
    v1::DownloadArtifactRequest request;
    request.set_artifact_id(id);
    auto reader = agents_->DownloadArtifact(&context, request);
    v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) data->append(chunk.data());
    return reader->Finish();
  }

  grpc::Status Complete(const char* token, const v1::AssignmentRef& ref, const std::string& uri) {
    grpc::ClientContext context;
    Auth(&context, token);
    v1::CompleteStageRequest done;
    *done.mutable_ref() = ref;
    done.set_success(true);
    v1::Artifact* out = done.add_outputs();
    out->set_name("corpus");
    out->set_uri(uri);
    out->set_sha256(Sha256Hex(kSecret));
    out->set_size_bytes(static_cast<int64_t>(std::string(kSecret).size()));
    v1::CompleteStageResponse response;
    return agents_->CompleteStage(&context, done, &response);
  }

  v1::State PieceState(const v1::AssignmentRef& ref) {
    grpc::ClientContext context;
    Auth(&context, kAdmin);
    v1::GetJobRequest request;
    request.set_job_id(ref.job_id());
    v1::Job job;
    EXPECT_TRUE(jobs_->GetJob(&context, request, &job).ok());
    return job.stages(0).shards(ref.shard_index()).state();
  }

  // Records `artifact` as the controller would (an old record, or a bug).
  void Record(const v1::Artifact& artifact) {
    ASSERT_TRUE(controller_->manager()->RecordArtifact(artifact).ok());
  }

  std::string PieceDir(const v1::AssignmentRef& ref) const {
    return (artifact_root_ / ref.job_id() / "prepare" / "shard-0").string();
  }

  const bert::testing::TempDir temp_dir_{"trust_"};  // removed after the members below
  const fs::path dir_ = temp_dir_.path();
  const fs::path data_dir_ = dir_ / "data";
  const fs::path artifact_root_ = data_dir_ / "artifacts";
  const std::string secret_ = (dir_ / "secret.txt").string();
  std::unique_ptr<Controller> controller_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  v1::AssignmentRef a_, b_;  // job A's prepare piece on a1, job B's on a2
};

TEST_F(TrustBoundaryTest, AnAgentTokenActsOnlyAsItsOwnAgentId) {
  Start();
  // a2's token naming a1, in every call that names an agent or its piece.
  {
    grpc::ClientContext context;
    Auth(&context, kAgent2);
    v1::HeartbeatRequest hb;
    hb.set_agent_id("a1");
    v1::HeartbeatResponse response;
    EXPECT_EQ(agents_->Heartbeat(&context, hb, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    Auth(&context, kAgent2);
    v1::RegisterRequest reg;
    reg.mutable_agent()->set_id("a1");
    reg.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse response;
    EXPECT_EQ(agents_->Register(&context, reg, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    Auth(&context, kAgent2);
    v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id("a1");
    v1::AcquireAssignmentResponse response;
    EXPECT_EQ(agents_->AcquireAssignment(&context, acquire, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    Auth(&context, kAgent2);
    v1::ReportStageRequest report;
    *report.mutable_ref() = a_;
    report.add_reports()->mutable_log()->set_message("forged");
    v1::ReportStageResponse response;
    EXPECT_EQ(agents_->ReportStage(&context, report, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  const std::string own = PieceDir(a_) + "/corpus";
  fs::create_directories(own);
  EXPECT_EQ(Complete(kAgent2, a_, "file://" + own).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(PieceState(a_), v1::RUNNING) << "a forged completion changed a1's piece";
  v1::Artifact out;
  EXPECT_EQ(Upload(kAgent2, a_, a_.job_id() + "/prepare/text", "x", &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // a1 uploads its own artifact; a2 runs no piece of job A and may not fetch it.
  ASSERT_TRUE(Upload(kAgent1, a_, a_.job_id() + "/prepare/text", "mine", &out).ok());
  std::string data;
  EXPECT_EQ(Download(kAgent2, a_.job_id() + "/prepare/text", &data).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(data.empty());
  EXPECT_TRUE(Download(kAgent1, a_.job_id() + "/prepare/text", &data).ok());
  EXPECT_EQ(data, "mine");
  // Its own id still works for a2, and admin may act as any agent.
  for (const char* token : {kAgent2, kAdmin}) {
    grpc::ClientContext context;
    Auth(&context, token);
    v1::HeartbeatRequest hb;
    hb.set_agent_id("a2");
    hb.add_running()->CopyFrom(b_);
    v1::HeartbeatResponse response;
    grpc::Status s = agents_->Heartbeat(&context, hb, &response);
    EXPECT_TRUE(s.ok()) << token << ": " << s.error_message();
  }
}

TEST_F(TrustBoundaryTest, APoolTokenActsAsTheAgentIdsOfItsPrefix) {
  Start();
  const v1::AssignmentRef c = RunJobOn("pool-1", kPool);
  v1::Artifact out;
  ASSERT_TRUE(Upload(kPool, c, c.job_id() + "/prepare/text", "pooled", &out).ok());
  std::string data;
  ASSERT_TRUE(Download(kPool, c.job_id() + "/prepare/text", &data).ok());
  EXPECT_EQ(data, "pooled");
  // Not outside its prefix: a1's piece and job.
  EXPECT_EQ(Upload(kPool, a_, a_.job_id() + "/prepare/text", "x", &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext context;
  Auth(&context, kPool);
  v1::HeartbeatRequest hb;
  hb.set_agent_id("a1");
  v1::HeartbeatResponse response;
  EXPECT_EQ(agents_->Heartbeat(&context, hb, &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  fs::create_directories(PieceDir(c));
  const std::string own = PieceDir(c) + "/corpus";
  ASSERT_TRUE(WriteFileAtomically(own, kSecret).ok());
  grpc::Status done = Complete(kPool, c, "file://" + own);
  EXPECT_TRUE(done.ok()) << done.error_message();
}

// Agents are remembered for good, so a pool token that may mint ids is
// bounded in how many: past JobManager::kMaxAgentsPerPoolToken a new id is
// refused (RESOURCE_EXHAUSTED), ids it already has still register, and an
// over-long field is refused before anything is stored.
TEST_F(TrustBoundaryTest, APoolTokenRegistersABoundedNumberOfAgentIds) {
  Start(/*jobs=*/false);
  const auto register_as = [&](const std::string& id, const std::string& hostname = "h") {
    grpc::ClientContext context;
    Auth(&context, kPool);
    v1::RegisterRequest request;
    request.mutable_agent()->set_id(id);
    request.mutable_agent()->set_hostname(hostname);
    request.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse response;
    return agents_->Register(&context, request, &response);
  };
  for (size_t i = 0; i < JobManager::kMaxAgentsPerPoolToken; ++i) {
    grpc::Status s = register_as("pool-" + std::to_string(i));
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
  }
  grpc::Status refused = register_as("pool-one-too-many");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("pool-*"), std::string::npos) << refused.error_message();
  EXPECT_TRUE(register_as("pool-7").ok()) << "a known id registers again";
  EXPECT_EQ(register_as("pool-7", std::string(300, 'h')).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Another agent's own token is not affected.
  grpc::ClientContext context;
  Auth(&context, kAgent1);
  v1::RegisterRequest request;
  request.mutable_agent()->set_id("a1");
  request.mutable_agent()->add_pools("cpu");
  v1::RegisterResponse response;
  EXPECT_TRUE(agents_->Register(&context, request, &response).ok());
  grpc::ClientContext list_context;
  Auth(&list_context, kAdmin);
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(jobs_->ListAgents(&list_context, v1::ListAgentsRequest(), &agents).ok());
  EXPECT_EQ(agents.agents_size(), static_cast<int>(JobManager::kMaxAgentsPerPoolToken) + 1);
}

TEST_F(TrustBoundaryTest, FileUrisOutsideThePieceDirectoryAreRefusedAndNeverServed) {
  Start();
  // Straight at the secret, through '..', and through a link inside the root.
  const std::string piece_dir = PieceDir(a_);
  fs::create_directories(piece_dir);
  fs::create_symlink(secret_, piece_dir + "/link");
  const std::string other_job = (artifact_root_ / b_.job_id() / "prepare" / "shard-0").string();
  for (const std::string& uri :
       {"file://" + secret_, "file://" + piece_dir + "/../../../../secret.txt",
        "file://" + piece_dir + "/link", "file://" + other_job + "/corpus",
        std::string("file:secret.txt"), std::string("http://example.com/x"),
        "bertd://" + b_.job_id() + "/prepare/corpus"}) {
    grpc::Status s = Complete(kAgent1, a_, uri);
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
        << uri << ": " << s.error_code() << " " << s.error_message();
    EXPECT_NE(s.error_message().find("output"), std::string::npos) << s.error_message();
  }
  // A checkpoint from prepare, and one pointing at the secret, are refused.
  {
    grpc::ClientContext context;
    Auth(&context, kAgent1);
    v1::ReportStageRequest report;
    *report.mutable_ref() = a_;
    v1::CheckpointRecord* ck = report.add_reports()->mutable_checkpoint();
    ck->set_step(10);
    ck->mutable_artifact()->set_uri("file://" + secret_);
    ck->mutable_artifact()->set_sha256(Sha256Hex(kSecret));
    v1::ReportStageResponse response;
    EXPECT_EQ(agents_->ReportStage(&context, report, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(PieceState(a_), v1::RUNNING);
  // Nothing was recorded, so nothing is served.
  std::string data;
  EXPECT_FALSE(Download(kAgent1, a_.job_id() + "/prepare/corpus", &data).ok());
  EXPECT_EQ(data, "");
  // Even records that name the secret (with its true hash) are not served:
  // outside the root, or through a link inside it.
  v1::Artifact outside;
  outside.set_id(a_.job_id() + "/prepare/leak");
  outside.set_uri("file://" + secret_);
  outside.set_sha256(Sha256Hex(kSecret));
  Record(outside);
  v1::Artifact linked = outside;
  linked.set_id(a_.job_id() + "/prepare/linked");
  linked.set_uri("file://" + piece_dir + "/link");
  Record(linked);
  v1::Artifact served_link = outside;  // bertd://: at root/<id>, itself a link
  served_link.set_id(a_.job_id() + "/prepare/served");
  served_link.set_uri("bertd://" + served_link.id());
  Record(served_link);
  fs::create_directories(artifact_root_ / a_.job_id() / "prepare");
  fs::create_symlink(secret_, artifact_root_ / served_link.id());
  for (const v1::Artifact& a : {outside, linked, served_link}) {
    for (const char* token : {kAgent1, kAdmin}) {
      std::string got;
      grpc::Status s = Download(token, a.id(), &got);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
          << a.id() << ": " << s.error_message();
      EXPECT_EQ(got.find(kSecret), std::string::npos) << a.id();
      EXPECT_TRUE(got.empty()) << a.id();
    }
  }
  // A FIFO under the root is refused at once, never waited on.
  v1::Artifact fifo = outside;
  fifo.set_id(a_.job_id() + "/prepare/fifo");
  fifo.set_uri("bertd://" + fifo.id());
  Record(fifo);
  ASSERT_EQ(::mkfifo((artifact_root_ / fifo.id()).c_str(), 0600), 0);
  std::string none;
  EXPECT_EQ(Download(kAgent1, fifo.id(), &none).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // A file:// output inside the piece's own directory is accepted.
  const std::string corpus = piece_dir + "/corpus";
  ASSERT_TRUE(WriteFileAtomically(corpus, kSecret).ok());
  grpc::Status ok = Complete(kAgent1, a_, "file://" + corpus);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
}

TEST_F(TrustBoundaryTest, AnUploadNamingAnotherJobIsRefusedAndItsArtifactsStay) {
  Start();
  const std::string theirs = b_.job_id() + "/prepare/text";
  v1::Artifact out;
  ASSERT_TRUE(Upload(kAgent2, b_, theirs, "job B's bytes", &out).ok());
  ASSERT_TRUE(fs::exists(artifact_root_ / theirs));
  // a1, with its own live piece, names job B's artifact, a parent of it, or
  // another stage of its own job.
  for (const std::string& id :
       {theirs, b_.job_id() + "/prepare/text/x", a_.job_id() + "/tokenizer/text", b_.job_id(),
        std::string(".partial/") + theirs}) {
    grpc::Status s = Upload(kAgent1, a_, id, "overwrite", &out);
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
        << id << ": " << s.error_message();
  }
  std::string data;
  ASSERT_TRUE(Download(kAgent2, theirs, &data).ok());
  EXPECT_EQ(data, "job B's bytes");
  {
    grpc::ClientContext context;
    Auth(&context, kAgent1);
    v1::GetUploadStateRequest request;
    request.set_artifact_id(theirs);
    v1::GetUploadStateResponse response;
    EXPECT_EQ(agents_->GetUploadState(&context, request, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
}

TEST_F(TrustBoundaryTest, AnArtifactRecordedWithoutSha256IsNotServed) {
  Start();
  v1::Artifact unhashed;
  unhashed.set_id(a_.job_id() + "/prepare/nohash");
  unhashed.set_uri("bertd://" + unhashed.id());
  Record(unhashed);
  fs::create_directories(artifact_root_ / a_.job_id() / "prepare");
  ASSERT_TRUE(WriteFileAtomically((artifact_root_ / unhashed.id()).string(), "unverified").ok());
  std::string data;
  grpc::Status s = Download(kAgent1, unhashed.id(), &data);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_TRUE(data.empty());
  // With a wrong hash: refused before any byte is sent.
  v1::Artifact wrong = unhashed;
  wrong.set_sha256(Sha256Hex("something else"));
  Record(wrong);
  data.clear();
  EXPECT_EQ(Download(kAgent1, unhashed.id(), &data).error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_TRUE(data.empty());
}

TEST_F(TrustBoundaryTest, ReflectionIsServedOnlyWithoutTokens) {
  const auto list_services = [&]() {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const std::string request_bytes("\x3a\x00", 2);  // ServerReflectionRequest{list_services: ""}
    grpc::Slice slice(request_bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status status;
    stub.UnaryCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                   grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
                     std::lock_guard<std::mutex> lock(mu);
                     status = s;
                     done = true;
                     cv.notify_all();
                   });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    std::string text;
    std::vector<grpc::Slice> slices;
    if (status.ok() && response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices)
        text.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    return std::make_pair(status, text);
  };
  // Without tokens (loopback only): reflection lists the API.
  Start(false, false);
  auto [open_status, listing] = list_services();
  ASSERT_TRUE(open_status.ok()) << open_status.error_message();
  EXPECT_NE(listing.find("bert.v1.JobService"), std::string::npos);
  controller_.reset();
  // With tokens: not served at all, though the plugin is registered process-wide by now.
  Start(false, true);
  auto [closed_status, nothing] = list_services();
  EXPECT_EQ(closed_status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
      << closed_status.error_message();
  EXPECT_TRUE(nothing.empty());
}

// A real small filesystem (tmpfs) under the artifact root: an upload larger
// than it fails with RESOURCE_EXHAUSTED naming the artifact, leaves no record
// and no partial bytes, and space is free again afterwards.
TEST_F(TrustBoundaryTest, DiskFullUploadFailsCleanly) {
  fs::create_directories(artifact_root_);
  if (::mount("tmpfs", artifact_root_.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{artifact_root_.string()};
  Start();
  const std::string id = a_.job_id() + "/prepare/big";
  v1::Artifact out;
  grpc::Status s = Upload(kAgent1, a_, id, std::string(3 << 20, 'z'), &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find(id), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("full"), std::string::npos) << s.error_message();
  std::string data;
  EXPECT_EQ(Download(kAgent1, id, &data).error_code(), grpc::StatusCode::NOT_FOUND)
      << "a record points at a torn file";
  EXPECT_FALSE(fs::exists(artifact_root_ / id));
  EXPECT_FALSE(fs::exists(artifact_root_ / ".partial" / id))
      << "the torn bytes still hold the disk";
  // The space is back: a small upload fits and is served.
  ASSERT_TRUE(Upload(kAgent1, a_, a_.job_id() + "/prepare/small", "fits", &out).ok());
  ASSERT_TRUE(Download(kAgent1, a_.job_id() + "/prepare/small", &data).ok());
  EXPECT_EQ(data, "fits");
}

}  // namespace
}  // namespace bert::server
