#include "protocol/artifact_manifest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace bert::protocol {
namespace {
namespace fs = std::filesystem;

// The manifest of a known directory, spelled out: one line per regular file,
// sorted bytewise ("B" < "a", "a.txt" < "a/z.txt" < "a0"), empty directories
// left out. Computed independently with sha256sum and `LC_ALL=C sort`.
constexpr char kExpectedManifest[] =
    "62cb81b5904a262ffaeed02abef36bfc540b09f964b8b0b636662f77ffce6714 3 B.txt\n"
    "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb 1 a.txt\n"
    "4a60bf7d4bc1e485744cf7e8d0860524752fca1ce42331be7c439fd23043f151 2 a/z.txt\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 a0\n"
    "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 6 sub/c.bin\n";
constexpr char kExpectedSha256[] =
    "a26891bf09043ba908c3e3882becabca23128f8779b7cb849a3cc5ec7a6723be";

class ArtifactManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bert_protocol_manifest_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "d" / "a");
    fs::create_directories(dir_ / "d" / "sub");
    fs::create_directories(dir_ / "d" / "empty");
    Write("d/sub/c.bin", "hello\n");
    Write("d/a0", "");
    Write("d/a/z.txt", "zz");
    Write("d/a.txt", "a");
    Write("d/B.txt", "bee");
    Write("f.txt", "hello\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& data) {
    std::ofstream(dir_ / rel, std::ios::binary) << data;
  }
  std::string Path(const std::string& rel) const { return (dir_ / rel).string(); }
  fs::path dir_;
};

TEST_F(ArtifactManifestTest, LineFormat) {
  EXPECT_EQ(ManifestLine({"x/y.bin", 12, "abc"}), "abc 12 x/y.bin\n");
  EXPECT_EQ(ManifestText({{"a", 1, "s1"}, {"b", 2, "s2"}}), "s1 1 a\ns2 2 b\n");
  EXPECT_EQ(ManifestText({}), "");
}

TEST_F(ArtifactManifestTest, KnownDirectoryHasTheExpectedManifestAndHash) {
  EXPECT_EQ(ListManifestFiles(Path("d")),
            (std::vector<std::string>{"B.txt", "a.txt", "a/z.txt", "a0", "sub/c.bin"}));
  auto a = DescribeLocalArtifact(Path("d"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->is_directory);
  EXPECT_EQ(ManifestText(a->files), kExpectedManifest);
  EXPECT_EQ(a->sha256, kExpectedSha256);
  EXPECT_EQ(a->size_bytes, 3 + 1 + 2 + 0 + 6);
}

// Links are left out, to files and to directories alike: a link in an output
// directory never brings a file from outside it into the artifact.
TEST_F(ArtifactManifestTest, SymbolicLinksAreNeverFollowed) {
  fs::create_symlink(Path("f.txt"), dir_ / "d" / "secret.txt");
  fs::create_directories(dir_ / "outside");
  Write("outside/x.txt", "x");
  fs::create_directory_symlink(dir_ / "outside", dir_ / "d" / "linked");
  EXPECT_EQ(ListManifestFiles(Path("d")),
            (std::vector<std::string>{"B.txt", "a.txt", "a/z.txt", "a0", "sub/c.bin"}));
  auto a = DescribeLocalArtifact(Path("d"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->sha256, kExpectedSha256);
}

TEST_F(ArtifactManifestTest, FileIsItsSizeAndSha) {
  auto a = DescribeLocalArtifact(Path("f.txt"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->is_directory);
  EXPECT_EQ(a->size_bytes, 6);
  EXPECT_EQ(a->sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  EXPECT_TRUE(a->files.empty());
}

TEST_F(ArtifactManifestTest, EmptyDirectoryIsTheHashOfNothing) {
  auto a = DescribeLocalArtifact(Path("d/empty"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->size_bytes, 0);
  EXPECT_EQ(a->sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(ArtifactManifestTest, MissingPathIsNotFound) {
  EXPECT_EQ(DescribeLocalArtifact(Path("missing")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(ListManifestFiles(Path("missing")).empty());
}

TEST_F(ArtifactManifestTest, VerifyCatchesKindTruncationAndCorruption) {
  v1::Artifact expected;
  expected.set_id("job/prepare/d");
  expected.set_size_bytes(12);
  expected.set_sha256(kExpectedSha256);
  expected.set_is_directory(true);
  EXPECT_TRUE(VerifyLocalArtifact(Path("d"), expected).ok());

  EXPECT_EQ(VerifyLocalArtifact(Path("f.txt"), expected).code(), absl::StatusCode::kDataLoss);

  Write("d/sub/c.bin", "hello");  // truncated
  absl::Status s = VerifyLocalArtifact(Path("d"), expected);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("job/prepare/d"), std::string::npos) << s;

  Write("d/sub/c.bin", "hellO\n");  // same size, other bytes
  EXPECT_EQ(VerifyLocalArtifact(Path("d"), expected).code(), absl::StatusCode::kDataLoss);

  EXPECT_EQ(VerifyLocalArtifact(Path("missing"), expected).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace bert::protocol
