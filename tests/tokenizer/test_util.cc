#include "tests/tokenizer/test_util.h"

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bert::tokenizer::testing {
namespace fs = std::filesystem;

std::string TestData(const std::string& name) {
  const char* src = std::getenv("BERT_SOURCE_DIR");
  std::string root = src != nullptr ? src : BERT_TOKENIZER_SOURCE_DIR;
  return root + "/tests/tokenizer/testdata/" + name;
}

std::optional<std::string> SharedDir() {
  const char* dir = std::getenv("BERT_SHARED_DIR");
  if (dir == nullptr || !fs::exists(fs::path(dir) / "corpus" / "brown.txt")) return std::nullopt;
  return std::string(dir);
}

std::optional<std::string> ReferenceDir() {
  const char* src = std::getenv("BERT_SOURCE_DIR");
  std::string root = src != nullptr ? src : BERT_TOKENIZER_SOURCE_DIR;
  std::string dir = root + "/bench/tokenizer/hf-reference";
  if (!fs::exists(dir + "/node_modules/tokenizers/package.json")) return std::nullopt;
  if (Run("node --version > /dev/null 2>&1") != 0) return std::nullopt;
  return dir;
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "bert-tok-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ReadOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteOrDie(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

int Run(const std::string& command, std::string* output) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) {
    if (output != nullptr) output->append(buf, n);
  }
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace bert::tokenizer::testing
