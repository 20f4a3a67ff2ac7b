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

}  // namespace
}  // namespace bert::agent
