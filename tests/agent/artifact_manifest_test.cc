#include "agent/artifact_manifest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/sha256.h"

namespace bert::agent {
namespace {
namespace fs = std::filesystem;

class ArtifactManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bert_manifest_test_" + std::to_string(getpid()));
    fs::create_directories(dir_ / "d" / "sub");
    Write("d/b.txt", "bee");
    Write("d/a.txt", "a");
    Write("d/sub/c.bin", std::string(3000, 'c'));
    Write("f.txt", "hello");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& data) {
    std::ofstream(dir_ / rel, std::ios::binary) << data;
  }
  fs::path dir_;
};

TEST_F(ArtifactManifestTest, FileIsItsSizeAndSha) {
  auto a = DescribeLocalArtifact((dir_ / "f.txt").string());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->is_directory);
  EXPECT_EQ(a->size_bytes, 5);
  EXPECT_EQ(a->sha256, Sha256Hex("hello"));
}

TEST_F(ArtifactManifestTest, DirectoryShaIsTheShaOfTheSortedManifest) {
  auto a = DescribeLocalArtifact((dir_ / "d").string());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->is_directory);
  EXPECT_EQ(a->size_bytes, 1 + 3 + 3000);
  const std::string expected = Sha256Hex("a") + " 1 a.txt\n" + Sha256Hex("bee") + " 3 b.txt\n" +
                               Sha256Hex(std::string(3000, 'c')) + " 3000 sub/c.bin\n";
  EXPECT_EQ(ManifestText(a->files), expected);
  EXPECT_EQ(a->sha256, Sha256Hex(expected));
}

TEST_F(ArtifactManifestTest, VerifyCatchesTruncationAndCorruption) {
  v1::Artifact expected;
  expected.set_id("job/prepare/d");
  auto a = DescribeLocalArtifact((dir_ / "d").string());
  ASSERT_TRUE(a.ok());
  expected.set_size_bytes(a->size_bytes);
  expected.set_sha256(a->sha256);
  expected.set_is_directory(true);
  EXPECT_TRUE(VerifyLocalArtifact((dir_ / "d").string(), expected).ok());

  Write("d/sub/c.bin", std::string(2999, 'c'));  // truncated
  absl::Status s = VerifyLocalArtifact((dir_ / "d").string(), expected);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("job/prepare/d"), std::string::npos);

  Write("d/sub/c.bin", std::string(2999, 'c') + "x");  // same size, other bytes
  EXPECT_EQ(VerifyLocalArtifact((dir_ / "d").string(), expected).code(),
            absl::StatusCode::kDataLoss);

  EXPECT_EQ(VerifyLocalArtifact((dir_ / "missing").string(), expected).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace bert::agent
