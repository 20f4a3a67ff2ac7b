// Path checks bertd runs for any caller stay bounded: tokenizer.from and
// preprocess.from_dataset naming /dev/zero, a FIFO or a huge file answer at
// once with a spec error, without reading (JobManager::Validate and Submit
// call ParseJobSpec with check_paths, as here).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "spec/job_spec.h"

namespace bert::spec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

long MaxRssKib() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

class SpecPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bert_spec_paths_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "corpus.txt") << "some text\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Parses with path checks; fails the test (instead of hanging) after 10 s.
  ParseResult ParseBounded(const std::string& tail, const std::string& fifo_to_unblock = "") {
    const long rss_before = MaxRssKib();
    const std::string yaml = "name: t\ncorpus:\n  sources: [corpus.txt]\n" + tail;
    auto result = std::async(std::launch::async, [&] {
      ParseOptions options;
      options.base_dir = dir_.string();
      options.check_paths = true;
      return ParseJobSpec(yaml, options);
    });
    if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "spec validation did not answer within 10 s";
      if (!fifo_to_unblock.empty()) std::ofstream(fifo_to_unblock) << "x";  // let it finish
    }
    ParseResult parsed = result.get();
    EXPECT_LT(MaxRssKib() - rss_before, 64 * 1024) << "validation grew memory";
    return parsed;
  }

  fs::path dir_;
};

TEST_F(SpecPathsTest, TokenizerFromDevZeroIsRefusedAtOnce) {
  const ParseResult r = ParseBounded("tokenizer:\n  from: /dev/zero\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors[0].field(), "tokenizer.from");
  EXPECT_THAT(r.errors[0].message(), HasSubstr("'/dev/zero' is not a regular file"));
}

TEST_F(SpecPathsTest, TokenizerFromAFifoDoesNotBlock) {
  const std::string fifo = (dir_ / "tok.fifo").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const ParseResult r = ParseBounded("tokenizer:\n  from: tok.fifo\n", fifo);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.errors[0].message(), HasSubstr("is not a regular file"));
}

TEST_F(SpecPathsTest, TokenizerDirectoryWithAFifoInsideDoesNotBlock) {
  fs::create_directories(dir_ / "tok");
  const std::string fifo = (dir_ / "tok" / "tokenizer.json").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const ParseResult r = ParseBounded("tokenizer:\n  from: tok\n", fifo);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.errors[0].message(), HasSubstr("tokenizer.json' is not a regular file"));
}

TEST_F(SpecPathsTest, HugeTokenizerFileIsRefusedUnread) {
  const fs::path big = dir_ / "vocab.txt";
  std::ofstream(big).close();
  fs::resize_file(big, 1ULL << 30);  // sparse: 1 GiB of zeros, never read
  const ParseResult r = ParseBounded("tokenizer:\n  from: vocab.txt\n");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.errors[0].message(), HasSubstr("more than the"));
}

TEST_F(SpecPathsTest, DatasetManifestFifoDoesNotBlock) {
  fs::create_directories(dir_ / "ds");
  const std::string fifo = (dir_ / "ds" / "manifest.json").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const ParseResult r = ParseBounded("preprocess:\n  from_dataset: ds\n", fifo);
  ASSERT_FALSE(r.ok());
  bool found = false;
  for (const auto& e : r.errors) {
    if (e.field() != "preprocess.from_dataset") continue;
    found = true;
    EXPECT_THAT(e.message(), HasSubstr("not a regular file"));
  }
  EXPECT_TRUE(found) << FormatErrors("job.yaml", r.errors);
}

// Uploaded sources (SubmitJobRequest.input_files) name the submitting
// machine's files: bertd makes them absolute but does not look for them;
// every other source is still checked.
TEST_F(SpecPathsTest, UploadedSourcesAreNotLookedFor) {
  const std::string yaml =
      "name: t\ncorpus:\n  sources:\n    - paths: [/home/alice/laptop/*.txt]\n"
      "    - paths: [nowhere.txt]\n";
  ParseOptions options;
  options.base_dir = dir_.string();
  options.check_paths = true;
  options.uploaded_sources = {0};
  ParseResult r = ParseJobSpec(yaml, options);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].field(), "corpus.sources[1].paths[0]");
  options.uploaded_sources = {0, 1};
  r = ParseJobSpec(yaml, options);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.spec.corpus().sources(1).paths(0), (dir_ / "nowhere.txt").string());
}

}  // namespace
}  // namespace bert::spec
