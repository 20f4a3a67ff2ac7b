#include "tests/data/data_test_util.h"

#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/progress_sink.h"
#include "gtest/gtest.h"
#include "tokenizer/wordpiece_trainer.h"

namespace bert::data::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/bert-data-test-XXXXXX";
  char* made = mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteFile(const std::string& path, std::string_view contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string GzipCompress(std::string_view data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string ZstdCompress(std::string_view data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  out.resize(n);
  return out;
}

std::string TestdataPath(std::string_view name) {
  const char* src = getenv("BERT_SOURCE_DIR");
  std::string root = src != nullptr ? src : ".";
  return root + "/tests/data/testdata/" + std::string(name);
}

static std::string SharedOr(const char* shared_name, const char* sample) {
  const char* shared = getenv("BERT_SHARED_DIR");
  if (shared != nullptr) {
    std::string p = std::string(shared) + "/corpus/" + shared_name;
    if (fs::exists(p)) return p;
  }
  return TestdataPath(sample);
}

std::string BrownTextPath() { return SharedOr("brown.txt", "brown-sample.txt"); }
std::string BrownDocsPath() { return SharedOr("brown-docs.jsonl", "brown-docs-sample.jsonl"); }

const std::string& TestTokenizerPath() {
  static const TempDir dir;  // removed when the test process exits
  static const std::string path = [] {
    bert::tokenizer::WordPieceTrainerOptions options;
    options.vocab_size = 3000;
    options.special_tokens = bert::tokenizer::WordPieceTrainerOptions::BertSpecialTokens();
    options.threads = 2;
    NullProgressSink sink;
    auto tok = bert::tokenizer::TrainFromFiles({TestdataPath("brown-sample.txt")}, options, sink);
    EXPECT_TRUE(tok.ok()) << tok.status();
    EXPECT_TRUE(tok->Save(dir.path()).ok());
    return dir.Join("tokenizer.json");
  }();
  return path;
}

std::vector<std::pair<std::string, std::string>> DirContents(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    files.emplace_back(fs::relative(e.path(), dir).string(), ReadAll(e.path().string()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

bert::v1::SourceSpec TextSource(const std::string& path, const std::string& separator) {
  bert::v1::SourceSpec s;
  s.add_paths(path);
  s.set_format("text");
  s.set_document_separator(separator);
  s.set_compression("auto");
  return s;
}

bert::v1::SourceSpec JsonlSource(const std::string& path, const std::string& field) {
  bert::v1::SourceSpec s;
  s.add_paths(path);
  s.set_format("jsonl");
  s.set_text_field(field);
  s.set_compression("auto");
  return s;
}

}  // namespace bert::data::testing
