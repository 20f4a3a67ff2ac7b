// output.dir never loses a file the export did not write: a directory holding
// other data is refused untouched, a new or empty one receives the model, a
// re-run of the same job replaces its own export, and a full disk leaves no
// partial export (a real, small tmpfs when the test may mount one).
#include "agent/export_publisher.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "protocol/failure_cause.h"

namespace bert::agent {
namespace {
namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ExportPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bert_export_publisher_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    model_ = dir_ / "model";
    fs::create_directories(model_ / "sub");
    std::ofstream(model_ / "config.json") << "{\"v\": 1}";
    std::ofstream(model_ / "model.safetensors") << std::string(1000, 'w');
    std::ofstream(model_ / "sub" / "x.txt") << "x";
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_, model_;
};

TEST_F(ExportPublisherTest, NewDirectoryReceivesTheModelAndAMarker) {
  const fs::path out = dir_ / "out" / "model-a";
  ASSERT_TRUE(PublishExport(model_.string(), out.string(), "job-1").ok());
  EXPECT_EQ(Slurp(out / "config.json"), "{\"v\": 1}");
  EXPECT_EQ(Slurp(out / "sub" / "x.txt"), "x");
  EXPECT_EQ(Slurp(out / kExportMarker), "job-1\n");
  // No temporary sibling is left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "out")) ++entries, (void)e;
  EXPECT_EQ(entries, 1);
}

TEST_F(ExportPublisherTest, EmptyDirectoryIsUsed) {
  const fs::path out = dir_ / "empty";
  fs::create_directories(out);
  ASSERT_TRUE(PublishExport(model_.string(), out.string(), "job-1").ok());
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
}

TEST_F(ExportPublisherTest, DirectoryWithOtherFilesIsRefusedAndUntouched) {
  const fs::path out = dir_ / "precious";
  fs::create_directories(out / "nested");
  std::ofstream(out / "data.db") << "keep me";
  std::ofstream(out / "nested" / "more.txt") << "and me";
  const absl::Status check = CheckExportTarget(out.string(), "job-1");
  EXPECT_EQ(protocol::CauseOf(check), v1::SPEC_ERROR);
  const absl::Status s = PublishExport(model_.string(), out.string(), "job-1");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(protocol::CauseOf(s), v1::SPEC_ERROR);
  EXPECT_TRUE(absl::StrContains(s.message(), out.string())) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "holds files that no export of this job wrote")) << s;
  EXPECT_EQ(Slurp(out / "data.db"), "keep me");
  EXPECT_EQ(Slurp(out / "nested" / "more.txt"), "and me");
  EXPECT_FALSE(fs::exists(out / "config.json"));
  EXPECT_FALSE(fs::exists(out / kExportMarker));
}

TEST_F(ExportPublisherTest, AFileIsRefused) {
  const fs::path out = dir_ / "a-file";
  std::ofstream(out) << "not a directory";
  const absl::Status s = PublishExport(model_.string(), out.string(), "job-1");
  EXPECT_EQ(protocol::CauseOf(s), v1::SPEC_ERROR) << s;
  EXPECT_EQ(Slurp(out), "not a directory");
}

TEST_F(ExportPublisherTest, ASymlinkIsRefused) {
  const fs::path target = dir_ / "elsewhere";
  fs::create_directories(target);
  std::ofstream(target / "keep") << "k";
  const fs::path out = dir_ / "link";
  fs::create_directory_symlink(target, out);
  const absl::Status s = PublishExport(model_.string(), out.string(), "job-1");
  EXPECT_EQ(protocol::CauseOf(s), v1::SPEC_ERROR) << s;
  EXPECT_EQ(Slurp(target / "keep"), "k");
}

TEST_F(ExportPublisherTest, SameJobReplacesItsOwnExportAnotherJobIsRefused) {
  const fs::path out = dir_ / "out";
  ASSERT_TRUE(PublishExport(model_.string(), out.string(), "job-1").ok());
  std::ofstream(model_ / "config.json", std::ios::trunc) << "{\"v\": 2}";
  fs::remove(model_ / "sub" / "x.txt");
  ASSERT_TRUE(PublishExport(model_.string(), out.string(), "job-1").ok());
  EXPECT_EQ(Slurp(out / "config.json"), "{\"v\": 2}");
  EXPECT_FALSE(fs::exists(out / "sub" / "x.txt"));
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_FALSE(absl::StrContains(e.path().filename().string(), ".bertd-")) << e.path();
  }

  const absl::Status s = PublishExport(model_.string(), out.string(), "job-2");
  EXPECT_EQ(protocol::CauseOf(s), v1::SPEC_ERROR) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "another job (job-1)")) << s;
  EXPECT_EQ(Slurp(out / kExportMarker), "job-1\n");
}

// A real full filesystem: a 1 MiB tmpfs (needs CAP_SYS_ADMIN; skipped otherwise).
TEST_F(ExportPublisherTest, DiskFullFailsClearlyAndLeavesNoExport) {
  const fs::path mnt = dir_ / "small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  }
  std::ofstream(model_ / "model.safetensors", std::ios::trunc) << std::string(256 << 10, 'w');
  const fs::path out = mnt / "model";
  const absl::Status s = PublishExport(model_.string(), out.string(), "job-1");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "disk full")) << s;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::is_empty(mnt)) << "a partial export was left behind";
  ::umount2(mnt.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace bert::agent
