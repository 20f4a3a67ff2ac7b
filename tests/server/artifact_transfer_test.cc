// Artifacts streamed through the controller over gRPC: checksummed chunks,
// resume after an interruption, refusal of corrupt chunks, stale attempts and
// corrupt stored bytes, and directories checked by their manifest.
#include <filesystem>
#include <fstream>

#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "common/sha256.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "agent/artifact_transfer.h"
#include "common/atomic_file.h"
#include "metrics/metrics_exposer.h"
#include "server/controller.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {

constexpr char kSpec[] = R"(name: artifacts
corpus:
  sources:
    - paths: [data/*.txt]
      format: text
model:
  preset: bert-tiny
output:
  dir: out
)";

v1::ArtifactChunk Chunk(const std::string& id, int64_t offset, const std::string& data,
                        const std::string& rel = "") {
  v1::ArtifactChunk c;
  c.set_artifact_id(id);
  c.set_offset(offset);
  c.set_data(data);
  c.set_chunk_sha256(Sha256Hex(data));
  c.set_relative_path(rel);
  return c;
}

class ArtifactTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = (dir_ / "data").string();
    options.check_spec_paths = false;
    metrics_ = std::make_shared<metrics::ControllerMetrics>();
    auto c = Controller::Start(options, metrics_);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(c).value();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(controller_->port()),
                                       grpc::InsecureChannelCredentials());
    agents_ = v1::AgentService::NewStub(channel);
    jobs_ = v1::JobService::NewStub(channel);
    // A job with a live PREPARE attempt to upload for.
    grpc::ClientContext c1;
    v1::SubmitJobRequest submit;
    submit.set_spec_yaml(kSpec);
    v1::SubmitJobResponse submitted;
    ASSERT_TRUE(jobs_->SubmitJob(&c1, submit, &submitted).ok());
    grpc::ClientContext c2;
    v1::RegisterRequest reg;
    reg.mutable_agent()->set_id("a1");
    reg.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse registered;
    ASSERT_TRUE(agents_->Register(&c2, reg, &registered).ok());
    grpc::ClientContext c3;
    v1::AcquireAssignmentRequest acquire;
    acquire.set_agent_id("a1");
    v1::AcquireAssignmentResponse acquired;
    ASSERT_TRUE(agents_->AcquireAssignment(&c3, acquire, &acquired).ok());
    ASSERT_TRUE(acquired.has_assignment());
    ref_ = acquired.assignment().ref();
  }
  void TearDown() override {
    controller_.reset();
  }

  // One UploadArtifact call sending `chunks` (the first gets the header).
  grpc::Status Upload(const v1::Artifact& header, std::vector<v1::ArtifactChunk> chunks,
                      v1::Artifact* out, std::string* resume = nullptr) {
    grpc::ClientContext context;
    auto writer = agents_->UploadArtifact(&context, out);
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (i == 0) {
        *chunks[i].mutable_artifact() = header;
        *chunks[i].mutable_ref() = ref_;
      }
      if (!writer->Write(chunks[i])) break;
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (resume != nullptr) {
      auto trailers = context.GetServerTrailingMetadata();
      auto it = trailers.find("bert-resume-offset");
      *resume = it == trailers.end() ? "" : std::string(it->second.data(), it->second.size());
    }
    return status;
  }

  grpc::Status Download(const std::string& id, int64_t offset, std::string* data,
                        const std::string& rel = "", std::vector<std::string>* files = nullptr) {
    grpc::ClientContext context;
    v1::DownloadArtifactRequest request;
    request.set_artifact_id(id);
    request.set_offset(offset);
    request.set_relative_path(rel);
    auto reader = agents_->DownloadArtifact(&context, request);
    v1::ArtifactChunk chunk;
    while (reader->Read(&chunk)) {
      EXPECT_EQ(Sha256Hex(chunk.data()), chunk.chunk_sha256());
      data->append(chunk.data());
      if (files != nullptr && (files->empty() || files->back() != chunk.relative_path())) {
        files->push_back(chunk.relative_path());
      }
    }
    return reader->Finish();
  }

  // bert_controller_artifact_bytes_total{direction="upload"}.
  double UploadedBytes() const {
    const std::string text = metrics::SerializeMetrics({metrics_->registry()});
    const std::string key = "bert_controller_artifact_bytes_total{direction=\"upload\"} ";
    const size_t at = text.find(key);
    return at == std::string::npos ? 0 : std::stod(text.substr(at + key.size()));
  }

  const bert::testing::TempDir temp_dir_{"art_"};  // removed after the members below
  const std::filesystem::path dir_ = temp_dir_.path();
  std::shared_ptr<metrics::ControllerMetrics> metrics_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  v1::AssignmentRef ref_;
};

TEST_F(ArtifactTransferTest, FileUploadResumesAndDownloadsVerified) {
  const std::string part1(700000, 'a');
  const std::string part2(500000, 'b');
  const std::string whole = part1 + part2;
  v1::Artifact header;
  header.set_id(ref_.job_id() + "/prepare/shard-0/text");
  header.set_name("text");
  header.set_size_bytes(static_cast<int64_t>(whole.size()));
  header.set_sha256(Sha256Hex(whole));
  v1::Artifact out;
  // Interrupted after the first chunk: not published.
  grpc::Status first = Upload(header, {Chunk(header.id(), 0, part1)}, &out);
  EXPECT_EQ(first.error_code(), grpc::StatusCode::DATA_LOSS);
  // Resuming past what is held is refused with the offset to resume at.
  std::string resume;
  grpc::Status gap = Upload(header, {Chunk(header.id(), static_cast<int64_t>(whole.size()) - 10, "x")},
                            &out, &resume);
  EXPECT_EQ(gap.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(resume, std::to_string(part1.size()));
  // A corrupt chunk is refused.
  v1::ArtifactChunk bad = Chunk(header.id(), static_cast<int64_t>(part1.size()), part2);
  bad.set_chunk_sha256(Sha256Hex("other"));
  EXPECT_EQ(Upload(header, {bad}, &out).error_code(), grpc::StatusCode::DATA_LOSS);
  // The resumed upload completes and is recorded.
  grpc::Status done = Upload(header, {Chunk(header.id(), static_cast<int64_t>(part1.size()), part2)}, &out);
  ASSERT_TRUE(done.ok()) << done.error_message();
  EXPECT_EQ(out.uri(), "bertd://" + header.id());

  std::string data;
  ASSERT_TRUE(Download(header.id(), 0, &data).ok());
  EXPECT_EQ(data, whole);
  std::string tail;
  ASSERT_TRUE(Download(header.id(), 1000000, &tail).ok());
  EXPECT_EQ(tail, whole.substr(1000000));

  // Bytes that rot on the controller's disk are detected, never passed on as good.
  const std::string stored = (dir_ / "data" / "artifacts" / header.id()).string();
  {
    std::fstream f(stored, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('Z');
  }
  std::string corrupt;
  EXPECT_EQ(Download(header.id(), 0, &corrupt).error_code(), grpc::StatusCode::DATA_LOSS);
  std::string missing;
  EXPECT_EQ(Download("nope", 0, &missing).error_code(), grpc::StatusCode::NOT_FOUND);
}

// The agent's ArtifactTransfer, after an upload was cut off, asks what the
// controller holds (only for the same content) and sends just the rest.
TEST_F(ArtifactTransferTest, AgentResumesAnInterruptedUploadFromTheHeldBytes) {
  std::string whole;
  for (int i = 0; i < 200000; ++i) whole += std::to_string(i % 97) + " ";
  const std::string path = (dir_ / "shard.txt").string();
  ASSERT_TRUE(WriteFileAtomically(path, whole).ok());
  v1::Artifact header;
  header.set_id(ref_.job_id() + "/prepare/shard-0/text");
  header.set_name("text");
  header.set_size_bytes(static_cast<int64_t>(whole.size()));
  header.set_sha256(Sha256Hex(whole));
  const size_t cut = whole.size() / 2;
  v1::Artifact out;
  EXPECT_EQ(Upload(header, {Chunk(header.id(), 0, whole.substr(0, cut))}, &out).error_code(),
            grpc::StatusCode::DATA_LOSS);  // cut off: nothing published

  auto state = [&](const std::string& sha) {
    grpc::ClientContext context;
    v1::GetUploadStateRequest request;
    request.set_artifact_id(header.id());
    request.set_sha256(sha);
    v1::GetUploadStateResponse response;
    EXPECT_TRUE(agents_->GetUploadState(&context, request, &response).ok());
    return response;
  };
  v1::GetUploadStateResponse held = state(header.sha256());
  ASSERT_EQ(held.files_size(), 1);
  EXPECT_EQ(held.files(0).relative_path(), "");
  EXPECT_EQ(held.files(0).bytes(), static_cast<int64_t>(cut));
  EXPECT_EQ(state(Sha256Hex("other content")).files_size(), 0);

  const double before = UploadedBytes();
  agent::ArtifactTransfer transfer(
      v1::AgentService::NewStub(grpc::CreateChannel(
          "127.0.0.1:" + std::to_string(controller_->port()), grpc::InsecureChannelCredentials())),
      agent::TransferOptions{});
  auto uploaded = transfer.Upload(ref_, header.id(), "text", v1::PREPARE, path);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  EXPECT_EQ(UploadedBytes() - before, static_cast<double>(whole.size() - cut));
  std::string data;
  ASSERT_TRUE(Download(header.id(), 0, &data).ok());
  EXPECT_EQ(data, whole);
  EXPECT_EQ(state(header.sha256()).files_size(), 0);  // nothing partial is left

  // Other content under the same id starts over: the stale partial bytes are
  // discarded, never combined with the new ones.
  const std::string other = whole + "more";
  v1::Artifact header2 = header;
  header2.set_id(ref_.job_id() + "/prepare/shard-0/other");
  header2.set_size_bytes(static_cast<int64_t>(other.size()));
  header2.set_sha256(Sha256Hex(other));
  v1::Artifact stale_header = header2;
  stale_header.set_sha256(Sha256Hex("stale"));
  EXPECT_FALSE(Upload(stale_header, {Chunk(header2.id(), 0, "stale bytes")}, &out).ok());
  ASSERT_TRUE(WriteFileAtomically(path, other).ok());
  auto second = transfer.Upload(ref_, header2.id(), "other", v1::PREPARE, path);
  ASSERT_TRUE(second.ok()) << second.status();
  data.clear();
  ASSERT_TRUE(Download(header2.id(), 0, &data).ok());
  EXPECT_EQ(data, other);
}

TEST_F(ArtifactTransferTest, DirectoryIsCheckedByItsManifest) {
  const std::map<std::string, std::string> files = {{"vocab.txt", "[PAD]\n[UNK]\n"},
                                                    {"sub/tokenizer.json", "{\"v\":1}"}};
  std::string manifest;
  int64_t total = 0;
  for (const auto& [rel, data] : files) {  // std::map: sorted bytewise
    manifest += Sha256Hex(data) + " " + std::to_string(data.size()) + " " + rel + "\n";
    total += static_cast<int64_t>(data.size());
  }
  v1::Artifact header;
  header.set_id(ref_.job_id() + "/prepare/tokenizer");  // the live piece is prepare's
  header.set_name("tokenizer");
  header.set_is_directory(true);
  header.set_size_bytes(total);
  header.set_sha256(Sha256Hex(manifest));
  std::vector<v1::ArtifactChunk> chunks;
  for (const auto& [rel, data] : files) chunks.push_back(Chunk(header.id(), 0, data, rel));
  v1::Artifact out;
  // Missing a file: the manifest differs and nothing is published.
  EXPECT_EQ(Upload(header, {chunks[0]}, &out).error_code(), grpc::StatusCode::DATA_LOSS);
  grpc::Status ok = Upload(header, chunks, &out);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  std::string data;
  std::vector<std::string> names;
  ASSERT_TRUE(Download(header.id(), 0, &data, "", &names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"sub/tokenizer.json", "vocab.txt"}));
  std::string one;
  ASSERT_TRUE(Download(header.id(), 0, &one, "vocab.txt").ok());
  EXPECT_EQ(one, files.at("vocab.txt"));
  // Paths that escape the artifact are refused.
  EXPECT_EQ(Upload(header, {Chunk(header.id(), 0, "x", "../evil")}, &out).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ArtifactTransferTest, StaleAttemptCannotUpload) {
  v1::Artifact header;
  header.set_id(ref_.job_id() + "/prepare/shard-0/text");
  header.set_size_bytes(1);
  header.set_sha256(Sha256Hex("x"));
  ref_.set_attempt(ref_.attempt() + 1);
  v1::Artifact out;
  EXPECT_EQ(Upload(header, {Chunk(header.id(), 0, "x")}, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace bert::server
