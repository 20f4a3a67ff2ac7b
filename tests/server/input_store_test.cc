// InputStore: content-addressed corpus uploads ("inputs/<sha256>") on a real
// ArtifactStore and RocksDB store: resume after an interruption, the same
// content stored once, the size limit before any byte, corrupt chunks and
// contents refused, and who may name an upload in a job.
#include "server/input_store.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "protocol/artifact_ids.h"
#include "storage/store_batch.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {
namespace fs = std::filesystem;

v1::ArtifactChunk Chunk(const std::string& data, int64_t offset) {
  v1::ArtifactChunk chunk;
  chunk.set_offset(offset);
  chunk.set_data(data);
  chunk.set_chunk_sha256(Sha256Hex(data));
  return chunk;
}

v1::Artifact Header(const std::string& content) {
  v1::Artifact header;
  header.set_sha256(Sha256Hex(content));
  header.set_id(protocol::InputArtifactId(header.sha256()));
  header.set_size_bytes(static_cast<int64_t>(content.size()));
  return header;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Regular files under `dir` (recursively).
int CountFiles(const fs::path& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

class InputStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(1 << 20); }
  void Open(int64_t limit) {
    inputs_.reset();
    store_.reset();
    auto store = storage::Store::Open(dir_.File("db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
    artifacts_ = std::make_unique<ArtifactStore>(dir_.File("artifacts"));
    inputs_ = std::make_unique<InputStore>(artifacts_.get(), store_.get(), &clock_, limit);
  }

  // Uploads `content` whole for `subject` in chunks of `chunk` bytes.
  absl::StatusOr<v1::Artifact> UploadAll(const std::string& content, const std::string& subject,
                                         size_t chunk = 7) {
    auto upload = inputs_->Begin(Header(content), subject);
    if (!upload.ok()) return upload.status();
    if (!upload->held()) {
      for (size_t at = 0; at < content.size() || at == 0; at += chunk) {
        absl::Status s = upload->bytes().Write(Chunk(content.substr(at, chunk), at));
        if (!s.ok()) return s;
        if (content.empty()) break;
      }
    }
    return upload->Finish();
  }

  testing::TempDir dir_{"input_store_test_"};
  FakeClock clock_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<InputStore> inputs_;
};

const std::string kCorpus = "the first document\nthe second one\nand a third\n";

TEST_F(InputStoreTest, UploadIsVerifiedRecordedAndHeld) {
  auto artifact = UploadAll(kCorpus, "alice");
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  const std::string sha = Sha256Hex(kCorpus);
  EXPECT_EQ(artifact->id(), "inputs/" + sha);
  EXPECT_EQ(artifact->uri(), "bertd://inputs/" + sha);
  EXPECT_EQ(Slurp(artifacts_->PathOf(artifact->id())), kCorpus);
  auto found = inputs_->Find(sha);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->size_bytes(), static_cast<int64_t>(kCorpus.size()));
  EXPECT_EQ(inputs_->HeldBytes(sha, "alice").value(), static_cast<int64_t>(kCorpus.size()));
}

TEST_F(InputStoreTest, TheSameContentAgainIsHeldAtOnceAndStoredOnce) {
  ASSERT_TRUE(UploadAll(kCorpus, "alice").ok());
  EXPECT_EQ(CountFiles(dir_.File("artifacts/inputs")), 1);
  const int files = CountFiles(dir_.File("artifacts"));
  auto again = inputs_->Begin(Header(kCorpus), "alice");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->held().has_value());  // nothing to receive
  EXPECT_EQ(again->Finish()->sha256(), Sha256Hex(kCorpus));
  EXPECT_EQ(CountFiles(dir_.File("artifacts")), files);
}

TEST_F(InputStoreTest, AnInterruptedUploadResumesFromTheBytesHeld) {
  const std::string sha = Sha256Hex(kCorpus);
  {
    auto upload = inputs_->Begin(Header(kCorpus), "alice");
    ASSERT_TRUE(upload.ok());
    ASSERT_TRUE(upload->bytes().Write(Chunk(kCorpus.substr(0, 10), 0)).ok());
  }  // the connection dropped: never finished
  EXPECT_FALSE(inputs_->Find(sha)->has_value());
  EXPECT_EQ(inputs_->HeldBytes(sha, "alice").value(), 10);

  auto resumed = inputs_->Begin(Header(kCorpus), "alice");
  ASSERT_TRUE(resumed.ok());
  // A chunk past the held bytes is refused with the offset to resume at.
  absl::Status gap = resumed->bytes().Write(Chunk(kCorpus.substr(20), 20));
  EXPECT_EQ(gap.code(), absl::StatusCode::kFailedPrecondition) << gap;
  EXPECT_EQ(resumed->bytes().resume_offset(), 10);
  ASSERT_TRUE(resumed->bytes().Write(Chunk(kCorpus.substr(10), 10)).ok());
  auto artifact = resumed->Finish();
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  EXPECT_EQ(Slurp(artifacts_->PathOf(artifact->id())), kCorpus);
}

TEST_F(InputStoreTest, TheSizeLimitRefusesBeforeAnyByte) {
  Open(16);
  auto upload = inputs_->Begin(Header(kCorpus), "alice");
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(upload.status().message().find("upload limit of 16 bytes"), std::string::npos)
      << upload.status();
  EXPECT_EQ(CountFiles(dir_.File("artifacts")), 0);
  EXPECT_TRUE(UploadAll("small\n", "alice").ok());  // at or under the limit: fine

  Open(0);
  upload = inputs_->Begin(Header("x"), "alice");
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kFailedPrecondition) << upload.status();
  EXPECT_NE(upload.status().message().find("--max-upload-bytes 0"), std::string::npos);
}

TEST_F(InputStoreTest, CorruptChunksAndContentsAreRefused) {
  auto upload = inputs_->Begin(Header(kCorpus), "alice");
  ASSERT_TRUE(upload.ok());
  v1::ArtifactChunk bad = Chunk(kCorpus, 0);
  bad.mutable_data()->at(3) ^= 1;  // damaged on the way: its checksum no longer matches
  EXPECT_EQ(upload->bytes().Write(bad).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(inputs_->HeldBytes(Sha256Hex(kCorpus), "alice").value(), 0);

  // Whole chunks of other content than the header's sha256: refused at
  // Finish, discarded, and not recorded.
  std::string other = kCorpus;
  other[0] = 'T';
  ASSERT_TRUE(upload->bytes().Write(Chunk(other, 0)).ok());
  auto finished = upload->Finish();
  EXPECT_EQ(finished.status().code(), absl::StatusCode::kDataLoss) << finished.status();
  EXPECT_FALSE(inputs_->Find(Sha256Hex(kCorpus))->has_value());
  EXPECT_EQ(inputs_->HeldBytes(Sha256Hex(kCorpus), "alice").value(), 0);
}

TEST_F(InputStoreTest, HeadersAreCheckedAndOneUploadOfAContentAtATime) {
  v1::Artifact header = Header(kCorpus);
  header.set_id("inputs/" + std::string(64, 'a'));
  EXPECT_EQ(inputs_->Begin(header, "alice").status().code(), absl::StatusCode::kInvalidArgument);
  header = Header(kCorpus);
  header.set_sha256("ABC");
  header.clear_id();
  EXPECT_EQ(inputs_->Begin(header, "alice").status().code(), absl::StatusCode::kInvalidArgument);
  header = Header(kCorpus);
  header.set_is_directory(true);
  EXPECT_EQ(inputs_->Begin(header, "alice").status().code(), absl::StatusCode::kInvalidArgument);

  auto first = inputs_->Begin(Header(kCorpus), "alice");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(inputs_->Begin(Header(kCorpus), "bob").status().code(), absl::StatusCode::kAborted);
  first = absl::InternalError("dropped");  // the first upload ends
  EXPECT_TRUE(inputs_->Begin(Header(kCorpus), "bob").ok());
}

v1::InputFile File(const std::string& content, int source = 0) {
  v1::InputFile f;
  f.set_source_index(source);
  f.set_path("/home/alice/corpus.txt");
  f.set_sha256(Sha256Hex(content));
  f.set_size_bytes(static_cast<int64_t>(content.size()));
  return f;
}

TEST_F(InputStoreTest, OnlyItsUploadersMayNameAnInputAndOthersSendTheBytes) {
  ASSERT_TRUE(UploadAll(kCorpus, "alice").ok());
  google::protobuf::RepeatedPtrField<v1::InputFile> files;
  *files.Add() = File(kCorpus);
  EXPECT_TRUE(inputs_->CheckSubmitted(files, "alice", false).ok());
  EXPECT_TRUE(inputs_->CheckSubmitted(files, "root", true).ok());  // an admin
  // Bob saw the sha256 in alice's job record; that does not open her file.
  absl::Status bob = inputs_->CheckSubmitted(files, "bob", false);
  EXPECT_EQ(bob.code(), absl::StatusCode::kFailedPrecondition) << bob;
  EXPECT_EQ(inputs_->HeldBytes(Sha256Hex(kCorpus), "bob").value(), 0);
  auto begun = inputs_->Begin(Header(kCorpus), "bob");
  ASSERT_TRUE(begun.ok());
  EXPECT_FALSE(begun->held().has_value());  // he must send it
  begun = absl::InternalError("dropped");
  auto by_bob = UploadAll(kCorpus, "bob");
  ASSERT_TRUE(by_bob.ok()) << by_bob.status();
  EXPECT_EQ(CountFiles(dir_.File("artifacts/inputs")), 1);  // still stored once
  EXPECT_TRUE(inputs_->CheckSubmitted(files, "bob", false).ok());
  auto record = inputs_->Find(Sha256Hex(kCorpus));
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->uploaded_by_size(), 2);

  files.Mutable(0)->set_size_bytes(3);
  EXPECT_EQ(inputs_->CheckSubmitted(files, "alice", false).code(),
            absl::StatusCode::kInvalidArgument);
  files.Mutable(0)->set_size_bytes(static_cast<int64_t>(kCorpus.size()));
  files.Mutable(0)->set_path("relative.txt");
  EXPECT_EQ(inputs_->CheckSubmitted(files, "alice", false).code(),
            absl::StatusCode::kInvalidArgument);
  *files.Add() = File("never uploaded\n");
  files.Mutable(0)->set_path("/x");
  EXPECT_EQ(inputs_->CheckSubmitted(files, "alice", false).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(InputStoreTest, ReferencedInputsAndRemove) {
  ASSERT_TRUE(UploadAll(kCorpus, "alice").ok());
  ASSERT_TRUE(UploadAll("unreferenced\n", "alice").ok());
  v1::Job job;
  job.set_id("j-1");
  *job.add_input_files() = File(kCorpus);
  storage::StoreBatch batch;
  batch.PutJob(job);
  ASSERT_TRUE(store_->Write(batch).ok());
  EXPECT_TRUE(JobNamesInput(job, Sha256Hex(kCorpus)));
  EXPECT_FALSE(JobNamesInput(job, Sha256Hex("unreferenced\n")));

  auto referenced = InputStore::ReferencedInputs(*store_);
  ASSERT_TRUE(referenced.ok());
  EXPECT_EQ(*referenced, std::set<std::string>{Sha256Hex(kCorpus)});
  const std::string gone = Sha256Hex("unreferenced\n");
  ASSERT_TRUE(inputs_->Remove(gone).ok());
  EXPECT_FALSE(inputs_->Find(gone)->has_value());
  EXPECT_FALSE(fs::exists(artifacts_->PathOf(protocol::InputArtifactId(gone))));
  EXPECT_FALSE(store_->GetArtifact(protocol::InputArtifactId(gone))->has_value());
  EXPECT_TRUE(inputs_->Find(Sha256Hex(kCorpus))->has_value());
}

}  // namespace
}  // namespace bert::server
