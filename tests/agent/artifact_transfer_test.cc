// ArtifactTransfer against an in-process AgentService on loopback that serves
// and stores artifacts by the rules of agent_service.proto, and that can be
// told to drop a stream half-way or to send corrupt bytes.
#include "agent/artifact_transfer.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "common/atomic_file.h"
#include "common/sha256.h"
#include "protocol/artifact_manifest.h"

namespace bert::agent {
namespace {
namespace fs = std::filesystem;
using protocol::DescribeLocalArtifact;
using protocol::VerifyLocalArtifact;

class FakeArtifactService final : public v1::AgentService::Service {
 public:
  explicit FakeArtifactService(fs::path root) : root_(std::move(root)) {}

  // Serve `path` (file or directory) as artifact `id`.
  v1::Artifact Publish(const std::string& id, const fs::path& path) {
    auto local = DescribeLocalArtifact(path.string());
    v1::Artifact a;
    a.set_id(id);
    a.set_name(path.filename().string());
    a.set_uri("bertd://" + id);
    a.set_size_bytes(local->size_bytes);
    a.set_sha256(local->sha256);
    a.set_is_directory(local->is_directory);
    std::lock_guard l(mu_);
    paths_[id] = path;
    return a;
  }

  std::atomic<int64_t> drop_after_bytes{-1};  // first stream only: fail after this many bytes
  std::atomic<bool> corrupt_chunk_sha{false};
  std::atomic<bool> tamper_data{false};  // send other bytes with a matching chunk sha
  std::vector<int64_t> offsets;          // requested offsets
  std::vector<v1::AssignmentRef> upload_refs;

  grpc::Status DownloadArtifact(grpc::ServerContext*, const v1::DownloadArtifactRequest* req,
                                grpc::ServerWriter<v1::ArtifactChunk>* writer) override {
    fs::path path;
    {
      std::lock_guard l(mu_);
      offsets.push_back(req->offset());
      if (!paths_.count(req->artifact_id()))
        return {grpc::StatusCode::NOT_FOUND, "no such artifact"};
      path = paths_[req->artifact_id()];
    }
    std::vector<std::pair<std::string, fs::path>> files;
    if (fs::is_directory(path)) {
      auto local = DescribeLocalArtifact(path.string());
      for (const auto& e : local->files) files.push_back({e.relative_path, path / e.relative_path});
    } else {
      files.push_back({"", path});
    }
    int64_t sent = 0;
    for (const auto& [rel, file] : files) {
      std::string data = *ReadFile(file.string());
      for (int64_t off = rel.empty() ? req->offset() : 0; off < static_cast<int64_t>(data.size());
           off += 1000) {
        v1::ArtifactChunk c;
        c.set_artifact_id(req->artifact_id());
        c.set_relative_path(rel);
        c.set_offset(off);
        c.set_data(data.substr(off, 1000));
        if (tamper_data) (*c.mutable_data())[0] ^= 1;
        c.set_chunk_sha256(corrupt_chunk_sha ? std::string(64, '0') : Sha256Hex(c.data()));
        if (int64_t drop = drop_after_bytes.exchange(-1); drop >= 0 && sent >= drop) {
          return {grpc::StatusCode::UNAVAILABLE, "connection reset (test)"};
        } else if (drop >= 0) {
          drop_after_bytes = drop;
        }
        writer->Write(c);
        sent += c.data().size();
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status UploadArtifact(grpc::ServerContext*, grpc::ServerReader<v1::ArtifactChunk>* reader,
                              v1::Artifact* response) override {
    v1::ArtifactChunk c;
    v1::Artifact header;
    fs::path dest;
    while (reader->Read(&c)) {
      if (c.has_artifact()) {
        header = c.artifact();
        std::lock_guard l(mu_);
        upload_refs.push_back(c.ref());
        dest = root_ / "uploads" / c.artifact_id();
        fs::remove_all(dest);
        fs::create_directories(header.is_directory() ? dest : dest.parent_path());
      }
      if (Sha256Hex(c.data()) != c.chunk_sha256()) return {grpc::StatusCode::DATA_LOSS, "chunk"};
      const fs::path file = c.relative_path().empty() ? dest : dest / c.relative_path();
      fs::create_directories(file.parent_path());
      std::ofstream out(file, std::ios::binary | std::ios::app);
      out << c.data();
    }
    auto local = DescribeLocalArtifact(dest.string());
    if (!local.ok() || local->sha256 != header.sha256() ||
        local->size_bytes != header.size_bytes()) {
      return {grpc::StatusCode::DATA_LOSS, "artifact checksum mismatch"};
    }
    *response = header;
    response->set_uri("bertd://" + header.id());
    return grpc::Status::OK;
  }

 private:
  fs::path root_;
  std::mutex mu_;
  std::map<std::string, fs::path> paths_;
};

class ArtifactTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bert_transfer_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "src" / "ds" / "sub");
    std::string big;
    for (int i = 0; i < 10000; ++i) big += std::to_string(i) + "\n";
    std::ofstream(dir_ / "src" / "shard.txt", std::ios::binary) << big;
    std::ofstream(dir_ / "src" / "ds" / "manifest.json") << "{}";
    std::ofstream(dir_ / "src" / "ds" / "sub" / "train.bin", std::ios::binary) << big << big;
    service_ = std::make_unique<FakeArtifactService>(dir_ / "server");
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_GT(port, 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                       grpc::InsecureChannelCredentials());
    TransferOptions o;
    o.chunk_bytes = 4096;
    o.retry_backoff = std::chrono::milliseconds(10);
    transfer_ = std::make_unique<ArtifactTransfer>(v1::AgentService::NewStub(channel), o);
  }
  void TearDown() override {
    server_->Shutdown();
    fs::remove_all(dir_);
  }

  fs::path dir_;
  std::unique_ptr<FakeArtifactService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ArtifactTransfer> transfer_;
};

TEST_F(ArtifactTransferTest, FileDownloadResumesFromThePartialBytes) {
  v1::Artifact a = service_->Publish("j/prepare/shard", dir_ / "src" / "shard.txt");
  service_->drop_after_bytes = 20000;
  const std::string dest = (dir_ / "agent" / "shard.txt").string();
  ASSERT_TRUE(transfer_->Download(a, dest).ok());
  EXPECT_TRUE(VerifyLocalArtifact(dest, a).ok());
  ASSERT_EQ(service_->offsets.size(), 2u);
  EXPECT_EQ(service_->offsets[0], 0);
  EXPECT_EQ(service_->offsets[1], 20000);  // resumed, not restarted
  EXPECT_FALSE(fs::exists(dest + ".partial"));
}

TEST_F(ArtifactTransferTest, DirectoryDownloadSurvivesAnInterruption) {
  v1::Artifact a = service_->Publish("j/preprocess/dataset", dir_ / "src" / "ds");
  service_->drop_after_bytes = 50000;
  const std::string dest = (dir_ / "agent" / "ds").string();
  ASSERT_TRUE(transfer_->Download(a, dest).ok());
  EXPECT_TRUE(VerifyLocalArtifact(dest, a).ok());
  EXPECT_EQ(*ReadFile(dest + "/manifest.json"), "{}");
}

TEST_F(ArtifactTransferTest, CorruptChunksAreNeverKept) {
  v1::Artifact a = service_->Publish("j/prepare/shard", dir_ / "src" / "shard.txt");
  service_->corrupt_chunk_sha = true;
  const std::string dest = (dir_ / "agent" / "shard.txt").string();
  absl::Status s = transfer_->Download(a, dest);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_FALSE(fs::exists(dest + ".partial"));
}

TEST_F(ArtifactTransferTest, WholeFileMismatchIsDetected) {
  // Every chunk checks out, but the bytes are not the artifact's.
  v1::Artifact a = service_->Publish("j/prepare/shard", dir_ / "src" / "shard.txt");
  service_->tamper_data = true;
  const std::string dest = (dir_ / "agent" / "shard.txt").string();
  absl::Status s = transfer_->Download(a, dest);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("sha256"), std::string::npos);
  EXPECT_FALSE(fs::exists(dest));
}

TEST_F(ArtifactTransferTest, ExistingVerifiedCopyIsReusedAndCorruptOneReplaced) {
  v1::Artifact a = service_->Publish("j/prepare/shard", dir_ / "src" / "shard.txt");
  const std::string dest = (dir_ / "agent" / "shard.txt").string();
  ASSERT_TRUE(transfer_->Download(a, dest).ok());
  ASSERT_TRUE(transfer_->Download(a, dest).ok());
  EXPECT_EQ(service_->offsets.size(), 1u);  // second call: nothing fetched
  std::ofstream(dest, std::ios::binary | std::ios::trunc) << "garbage";
  ASSERT_TRUE(transfer_->Download(a, dest).ok());
  EXPECT_TRUE(VerifyLocalArtifact(dest, a).ok());
}

TEST_F(ArtifactTransferTest, UploadSendsFilesAndDirectoriesWithTheirAttempt) {
  v1::AssignmentRef ref;
  ref.set_job_id("j");
  ref.set_stage(v1::PREPROCESS);
  ref.set_attempt(2);
  auto up = transfer_->Upload(ref, "j/preprocess/dataset", "dataset", v1::PREPROCESS,
                              (dir_ / "src" / "ds").string());
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->uri(), "bertd://j/preprocess/dataset");
  EXPECT_TRUE(up->is_directory());
  EXPECT_TRUE(
      VerifyLocalArtifact((dir_ / "server" / "uploads" / "j/preprocess/dataset").string(), *up)
          .ok());
  ASSERT_EQ(service_->upload_refs.size(), 1u);
  EXPECT_EQ(service_->upload_refs[0].attempt(), 2);

  auto file = transfer_->Upload(ref, "j/prepare/shard", "shard", v1::PREPARE,
                                (dir_ / "src" / "shard.txt").string());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_FALSE(file->is_directory());
}

TEST_F(ArtifactTransferTest, UnknownArtifactIsNotFound) {
  v1::Artifact a;
  a.set_id("nope");
  EXPECT_EQ(transfer_->Download(a, (dir_ / "agent" / "x").string()).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace bert::agent
