// tokenizer.from and preprocess.from_dataset, read by agents, stay under the
// operator's --data-root directories (symlinks and ".." resolved).
#include "agent/data_roots.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "protocol/failure_cause.h"

namespace bert::agent {
namespace {
namespace fs = std::filesystem;

TEST(DataRootsTest, InsideIsAllowedOutsideIsADataErrorNamingThePath) {
  const fs::path dir = fs::temp_directory_path() / ("bert_data_roots_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "root" / "tok");
  fs::create_directories(dir / "root-evil");
  std::ofstream(dir / "secret") << "s";
  fs::create_symlink(dir / "secret", dir / "root" / "link");
  const std::vector<std::string> roots = {(dir / "root").string()};

  EXPECT_TRUE(CheckUnderDataRoots("tokenizer.from", (dir / "root" / "tok").string(), roots).ok());
  EXPECT_TRUE(CheckUnderDataRoots("tokenizer.from", (dir / "secret").string(), {}).ok());
  for (const fs::path& bad : {dir / "secret", dir / "root" / "link", dir / "root" / ".." / "secret",
                              dir / "root-evil"}) {
    const absl::Status s = CheckUnderDataRoots("tokenizer.from", bad.string(), roots);
    EXPECT_EQ(protocol::CauseOf(s), v1::DATA_ERROR) << bad;
    EXPECT_TRUE(absl::StrContains(s.message(), "tokenizer.from: " + bad.string())) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "outside this agent's data roots")) << s;
  }
  fs::remove_all(dir);
}

// The spec's own directory (bertd --local-agent's single-user default) is a
// root only when allowed, and never one that holds or lies inside the
// agent's work directory: a submitter naming "/" or the controller's data
// directory as its spec directory gains nothing.
TEST(DataRootsTest, TheSpecDirectoryIsARootOnlyWhenAllowedAndApart) {
  const fs::path dir = fs::temp_directory_path() / ("bert_spec_roots_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "specs");
  fs::create_directories(dir / "state" / "local-agent" / "jobs" / "other-job");
  const std::string work = (dir / "state" / "local-agent").string();
  const std::vector<std::string> op = {"/srv/corpora"};

  // Not allowed: the operator's roots, unchanged (empty stays unconfined).
  EXPECT_EQ(*JobDataRoots(op, false, (dir / "specs").string(), work), op);
  EXPECT_TRUE(JobDataRoots({}, false, (dir / "specs").string(), work)->empty());
  // Allowed: the operator's roots plus the spec's directory, canonical.
  auto allowed = JobDataRoots(op, true, (dir / "specs" / ".." / "specs").string(), work);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(*allowed, (std::vector<std::string>{"/srv/corpora", fs::canonical(dir / "specs").string()}));
  // No spec directory recorded: nothing added.
  EXPECT_EQ(*JobDataRoots(op, true, "", work), op);
  // Refused, each a DATA_ERROR naming the directory and the rule.
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"/", "holds this agent's work directory"},
      {(dir / "state").string(), "holds this agent's work directory"},
      {work, "holds this agent's work directory"},
      {(dir / "state" / "local-agent" / "jobs" / "other-job").string(),
       "lies inside this agent's work directory"},
      {"relative/dir", "is not an absolute path"},
      {(dir / "missing").string(), "is not a directory on this host"},
  };
  for (const auto& [spec_dir, rule] : refused) {
    auto r = JobDataRoots({}, true, spec_dir, work);
    ASSERT_FALSE(r.ok()) << spec_dir;
    EXPECT_EQ(protocol::CauseOf(r.status()), v1::DATA_ERROR) << spec_dir;
    EXPECT_TRUE(absl::StrContains(r.status().message(), spec_dir)) << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), rule)) << r.status();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bert::agent
