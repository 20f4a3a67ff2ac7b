// Corpus uploads over real RPCs with role tokens (JobService GetClusterInfo,
// UploadInput, GetInputUploadState; SubmitJob with input_files): only
// submitters upload, a job names only its submitter's uploads, bertd does not
// look for an uploaded source's paths on its own disk, the prepare piece gets
// the upload as an input, and an uploaded file is served only to the agents
// of a job that names it.
#include <filesystem>
#include <memory>
#include <string>

#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "client/bert_client.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "protocol/artifact_ids.h"
#include "server/controller.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {
namespace fs = std::filesystem;

constexpr char kAlice[] = "alice-token-0123456789";
constexpr char kBob[] = "bob-token-0123456789xx";
constexpr char kViewer[] = "viewer-token-0123456789";
constexpr char kAgent1[] = "agent-a1-token-0123456789";
constexpr char kAgent2[] = "agent-a2-token-0123456789";
constexpr char kTokens[] =
    "alice-token-0123456789 submitter alice\n"
    "bob-token-0123456789xx submitter bob\n"
    "viewer-token-0123456789 viewer vera\n"
    "agent-a1-token-0123456789 agent a1\n"
    "agent-a2-token-0123456789 agent a2\n";

const std::string kCorpus = "one document from the laptop\nand another one\n";

void Auth(grpc::ClientContext* context, const char* token) {
  context->AddMetadata("authorization", std::string("Bearer ") + token);
}

std::string Spec(const std::string& path) {
  return "name: upload\ncorpus:\n  sources: [" + path + "]\nmodel:\n  preset: bert-tiny\n";
}

class InputUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFileAtomically(dir_.File("tokens.txt"), kTokens).ok());
    fs::create_directories(dir_.path() / "cluster");
    ASSERT_TRUE(WriteFileAtomically(dir_.File("cluster/b.txt"), "a document\n").ok());
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = dir_.File("data");
    options.tokens_file = dir_.File("tokens.txt");
    options.check_spec_paths = true;  // uploaded sources are exempt, others are not
    options.shared_input_roots = {dir_.File("cluster")};
    options.max_upload_bytes = 1 << 20;
    auto c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(c).value();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(controller_->port()),
                                       grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel);
    agents_ = v1::AgentService::NewStub(channel);
  }

  grpc::Status UploadInput(const char* token, const std::string& data, v1::Artifact* out) {
    grpc::ClientContext context;
    Auth(&context, token);
    auto writer = jobs_->UploadInput(&context, out);
    v1::ArtifactChunk chunk;
    chunk.mutable_artifact()->set_sha256(Sha256Hex(data));
    chunk.mutable_artifact()->set_size_bytes(static_cast<int64_t>(data.size()));
    chunk.set_artifact_id(protocol::InputArtifactId(Sha256Hex(data)));
    chunk.set_data(data);
    chunk.set_chunk_sha256(Sha256Hex(data));
    writer->Write(chunk);
    writer->WritesDone();
    return writer->Finish();
  }

  int64_t Held(const char* token, const std::string& data) {
    grpc::ClientContext context;
    Auth(&context, token);
    v1::GetUploadStateRequest request;
    request.set_sha256(Sha256Hex(data));
    v1::GetUploadStateResponse response;
    grpc::Status s = jobs_->GetInputUploadState(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.files_size() == 0 ? 0 : response.files(0).bytes();
  }

  grpc::Status Submit(const char* token, const std::string& spec, bool with_input,
                      v1::SubmitJobResponse* out) {
    grpc::ClientContext context;
    Auth(&context, token);
    v1::SubmitJobRequest request;
    request.set_spec_yaml(spec);
    if (with_input) {
      v1::InputFile* f = request.add_input_files();
      f->set_path("/home/alice/laptop/corpus.txt");
      f->set_sha256(Sha256Hex(kCorpus));
      f->set_size_bytes(static_cast<int64_t>(kCorpus.size()));
    }
    return jobs_->SubmitJob(&context, request, out);
  }

  v1::Assignment Acquire(const std::string& agent, const char* token) {
    grpc::ClientContext c1;
    Auth(&c1, token);
    v1::RegisterRequest reg;
    reg.mutable_agent()->set_id(agent);
    reg.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse registered;
    EXPECT_TRUE(agents_->Register(&c1, reg, &registered).ok());
    grpc::ClientContext c2;
    Auth(&c2, token);
    v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id(agent);
    acquire.set_wait_ms(5000);
    v1::AcquireAssignmentResponse acquired;
    EXPECT_TRUE(agents_->AcquireAssignment(&c2, acquire, &acquired).ok());
    return acquired.assignment();
  }

  // The bytes of input `sha` as `token`'s agent fetches them for `job_id`.
  grpc::Status Download(const char* token, const std::string& sha, const std::string& job_id,
                        std::string* data) {
    grpc::ClientContext context;
    Auth(&context, token);
    v1::DownloadArtifactRequest request;
    request.set_artifact_id(protocol::InputArtifactId(sha));
    request.set_job_id(job_id);
    auto reader = agents_->DownloadArtifact(&context, request);
    v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) *data += chunk.data();
    return reader->Finish();
  }

  testing::TempDir dir_{"input_upload_test_"};
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
};

TEST_F(InputUploadTest, SubmittersUploadAndAJobsAgentsAloneFetchIt) {
  grpc::ClientContext info_context;
  Auth(&info_context, kAlice);
  v1::ClusterInfo info;
  ASSERT_TRUE(jobs_->GetClusterInfo(&info_context, v1::GetClusterInfoRequest(), &info).ok());
  EXPECT_EQ(info.max_upload_bytes(), 1 << 20);
  ASSERT_EQ(info.shared_input_roots_size(), 1);
  EXPECT_EQ(info.shared_input_roots(0), dir_.File("cluster"));
  EXPECT_FALSE(info.spec_dir_shared());

  v1::Artifact uploaded;
  EXPECT_EQ(UploadInput(kViewer, kCorpus, &uploaded).error_code(), grpc::PERMISSION_DENIED);
  grpc::Status s = UploadInput(kAlice, kCorpus, &uploaded);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(uploaded.id(), protocol::InputArtifactId(Sha256Hex(kCorpus)));
  EXPECT_EQ(uploaded.uploaded_by_size(), 0);  // who uploaded it is not told
  EXPECT_EQ(Held(kAlice, kCorpus), static_cast<int64_t>(kCorpus.size()));
  EXPECT_EQ(Held(kBob, kCorpus), 0);  // bob does not learn that alice holds it

  // The laptop's path exists nowhere here: fine for an uploaded source.
  const std::string laptop_spec = Spec("/home/alice/laptop/corpus.txt");
  v1::SubmitJobResponse a, b, refused;
  EXPECT_EQ(Submit(kBob, laptop_spec, true, &refused).error_code(), grpc::FAILED_PRECONDITION);
  EXPECT_EQ(Submit(kAlice, laptop_spec, false, &refused).error_code(), grpc::INVALID_ARGUMENT);
  s = Submit(kAlice, laptop_spec, true, &a);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(a.job().input_files_size(), 1);
  EXPECT_EQ(a.job().input_files(0).sha256(), Sha256Hex(kCorpus));
  s = Submit(kAlice, Spec(dir_.File("cluster/b.txt")), false, &b);
  ASSERT_TRUE(s.ok()) << s.error_message();

  const v1::Assignment on_a1 = Acquire("a1", kAgent1);
  ASSERT_EQ(on_a1.ref().job_id(), a.job().id());
  ASSERT_EQ(on_a1.inputs_size(), 1);
  EXPECT_EQ(on_a1.inputs(0).uri(), "bertd://" + uploaded.id());
  EXPECT_EQ(on_a1.inputs(0).uploaded_by_size(), 0);
  ASSERT_EQ(on_a1.input_files_size(), 1);
  const v1::Assignment on_a2 = Acquire("a2", kAgent2);
  ASSERT_EQ(on_a2.ref().job_id(), b.job().id());
  EXPECT_EQ(on_a2.inputs_size(), 0);

  std::string data;
  s = Download(kAgent1, Sha256Hex(kCorpus), a.job().id(), &data);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(data, kCorpus);
  // a2 runs job B, which does not name the file; nor does it run job A.
  data.clear();
  EXPECT_EQ(Download(kAgent2, Sha256Hex(kCorpus), b.job().id(), &data).error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_EQ(Download(kAgent2, Sha256Hex(kCorpus), a.job().id(), &data).error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_TRUE(data.empty());
}

TEST_F(InputUploadTest, TheLimitIsCheckedOnTheHeader) {
  v1::Artifact uploaded;
  grpc::Status s = UploadInput(kAlice, std::string((1 << 20) + 1, 'x'), &uploaded);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("--max-upload-bytes"), std::string::npos) << s.error_message();
  EXPECT_FALSE(fs::exists(dir_.File("data/artifacts/.partial/inputs")));
}

// bertctl's side (BertClient): an upload cut off after its first chunk is
// resumed from the bytes bertd holds, sending only the rest.
TEST_F(InputUploadTest, AnInterruptedUploadResumesFromWhatBertdHolds) {
  std::string content;
  for (int i = 0; content.size() < 700'000; ++i) content += "line " + std::to_string(i) + "\n";
  const std::string sha = Sha256Hex(content);
  {
    grpc::ClientContext context;
    Auth(&context, kAlice);
    v1::Artifact ignored;
    auto writer = jobs_->UploadInput(&context, &ignored);
    v1::ArtifactChunk chunk;
    chunk.mutable_artifact()->set_sha256(sha);
    chunk.mutable_artifact()->set_size_bytes(static_cast<int64_t>(content.size()));
    chunk.set_data(content.substr(0, 300'000));
    chunk.set_chunk_sha256(Sha256Hex(chunk.data()));
    ASSERT_TRUE(writer->Write(chunk));
    writer->WritesDone();  // ends early: bertd holds 300,000 bytes, unpublished
    EXPECT_FALSE(writer->Finish().ok());
  }
  ASSERT_TRUE(WriteFileAtomically(dir_.File("laptop.txt"), content).ok());
  client::ClientOptions options;
  options.token = kAlice;
  client::BertClient client(grpc::CreateChannel("127.0.0.1:" + std::to_string(controller_->port()),
                                                grpc::InsecureChannelCredentials()),
                            options);
  auto held = client.GetInputUploadState(sha);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(*held, 300'000);
  int64_t first_progress = -1;
  auto uploaded = client.UploadInput(dir_.File("laptop.txt"), sha,
                                     static_cast<int64_t>(content.size()), *held, [&](int64_t at) {
                                       if (first_progress < 0) first_progress = at;
                                     });
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  EXPECT_EQ(first_progress, static_cast<int64_t>(content.size()));  // one chunk: the rest
  EXPECT_EQ(client.GetInputUploadState(sha).value(), static_cast<int64_t>(content.size()));
  EXPECT_EQ(ReadFile(dir_.File("data/artifacts/") + uploaded->id()).value(), content);
}

}  // namespace
}  // namespace bert::server
