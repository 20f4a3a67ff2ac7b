// Helpers for the bert_data tests: temporary directories, files, fixtures.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bert/v1/spec.pb.h"

namespace bert::data::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, std::string_view contents);
std::string ReadAll(const std::string& path);
std::string GzipCompress(std::string_view data);
std::string ZstdCompress(std::string_view data);

// ../shared/corpus/brown.txt and brown-docs.jsonl when $BERT_SHARED_DIR has them,
// else the samples committed under tests/data/testdata/.
std::string BrownTextPath();
std::string BrownDocsPath();
std::string TestdataPath(std::string_view name);

// A WordPiece tokenizer (BERT special tokens) trained on the committed sample,
// saved once per process; returns its tokenizer.json.
const std::string& TestTokenizerPath();

// Files of `dir` (recursively) with their contents, relative names sorted.
std::vector<std::pair<std::string, std::string>> DirContents(const std::string& dir);

bert::v1::SourceSpec TextSource(const std::string& path, const std::string& separator = "line");
bert::v1::SourceSpec JsonlSource(const std::string& path, const std::string& field = "text");

}  // namespace bert::data::testing
