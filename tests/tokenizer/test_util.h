// Helpers shared by the tokenizer tests: where the fixtures are, temporary
// directories, reading files.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace bert::tokenizer::testing {

// tests/tokenizer/testdata, from $BERT_SOURCE_DIR (or the source tree).
std::string TestData(const std::string& name);
// $BERT_SHARED_DIR when it holds corpus/brown.txt.
std::optional<std::string> SharedDir();
// bench/tokenizer/hf-reference when the reference is installed and node runs.
std::optional<std::string> ReferenceDir();
// A fresh directory, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};
std::string ReadOrDie(const std::string& path);
void WriteOrDie(const std::string& path, const std::string& contents);
std::vector<std::string> Lines(const std::string& text);
// Runs a shell command; returns its exit status and fills `output` (stdout).
int Run(const std::string& command, std::string* output = nullptr);

}  // namespace bert::tokenizer::testing
