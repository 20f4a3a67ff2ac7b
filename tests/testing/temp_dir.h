// A fresh, uniquely named directory under the system temporary directory for
// one test or fixture, removed with everything in it when destroyed (kept when
// $BERT_KEEP_TEST_DIRS is set, for a look after a failure). Not copyable.
#pragma once

#include <filesystem>
#include <string>

namespace bert::testing {

class TempDir {
 public:
  // Creates <tmp>/<prefix>XXXXXX (mkdtemp); aborts the test program with a
  // message when it cannot, since no test can run without it.
  explicit TempDir(const std::string& prefix = "bert_test_");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }
  // path() / `name`, as a string.
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace bert::testing
