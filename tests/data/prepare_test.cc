// prepare: statistics, deduplication across sources, independence of the
// worker count, atomicity when a worker is killed mid-write.
#include "data/prepare.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/data/data_test_util.h"

namespace bert::data {
namespace {

using testing::DirContents;
using testing::JsonlSource;
using testing::ReadAll;
using testing::TempDir;
using testing::TextSource;
using testing::WriteFile;

absl::StatusOr<PreparedCorpus> Prepare(const bert::v1::CorpusSpec& corpus, const std::string& dir,
                                       int workers, int threads = 2,
                                       uint64_t dedup_memory = 1 << 30) {
  NullProgressSink sink;
  for (int i = 0; i < workers; ++i) {
    absl::Status s = PrepareWorker(corpus, dir, {i, workers, threads}, sink);
    if (!s.ok()) return s;
  }
  return FinalizePrepare(dir, workers, {threads, dedup_memory}, sink);
}

std::vector<std::string> CorpusDocuments(const PreparedCorpus& corpus) {
  std::vector<std::string> docs;
  for (size_t i = 0; i < corpus.shards.size(); ++i) {
    std::string text = ReadAll(corpus.ShardPath(i));
    EXPECT_TRUE(text.empty() || text.back() == '\n');
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    lines.pop_back();
    EXPECT_EQ(lines.size(), corpus.shards[i].documents);
    docs.insert(docs.end(), lines.begin(), lines.end());
  }
  return docs;
}

bert::v1::CorpusSpec BrownSpec() {
  bert::v1::CorpusSpec corpus;
  *corpus.add_sources() = TextSource(testing::BrownTextPath());
  *corpus.add_sources() = JsonlSource(testing::BrownDocsPath());
  corpus.set_on_error("fail");
  corpus.set_drop_empty(true);
  corpus.set_deduplicate(true);
  corpus.set_shard_size_bytes(512 << 10);  // several units per file
  return corpus;
}

TEST(PrepareTest, IdenticalOutputForAnyNumberOfWorkers) {
  bert::v1::CorpusSpec corpus = BrownSpec();
  TempDir d1, d2, d3;
  auto c1 = Prepare(corpus, d1.path(), 1, 1);
  auto c2 = Prepare(corpus, d2.path(), 2, 2);
  auto c3 = Prepare(corpus, d3.path(), 3, 2, /*dedup_memory=*/4096);  // many dedup passes
  ASSERT_TRUE(c1.ok() && c2.ok() && c3.ok()) << c1.status() << c2.status() << c3.status();
  auto f1 = DirContents(d1.path());
  EXPECT_EQ(f1, DirContents(d2.path()));
  EXPECT_EQ(f1, DirContents(d3.path()));
  EXPECT_FALSE(std::filesystem::exists(d1.Join("parts")));
  EXPECT_TRUE(PreparedCorpus::Load(d3.path(), /*verify=*/true).ok());
  EXPECT_GT(c1->stats.documents, 0u);
  EXPECT_GT(c1->shards.size(), 1u);
}

TEST(PrepareTest, MatchesAStraightforwardReadingOfTheSources) {
  // Reference: every non-empty line of brown.txt, then every text of the JSONL,
  // newlines as spaces, first copy kept.
  std::vector<std::string> expected;
  std::set<std::string> seen;
  uint64_t empty = 0, dups = 0;
  auto add = [&](std::string text) {
    for (char& c : text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    if (text.find_first_not_of(" \t\f\v") == std::string::npos) {
      ++empty;
    } else if (!seen.insert(text).second) {
      ++dups;
    } else {
      expected.push_back(text);
    }
  };
  std::istringstream brown(ReadAll(testing::BrownTextPath()));
  for (std::string line; std::getline(brown, line);) add(line);
  std::istringstream docs(ReadAll(testing::BrownDocsPath()));
  for (std::string line; std::getline(docs, line);) {
    add(nlohmann::json::parse(line)["text"].get<std::string>());
  }
  TempDir dir;
  auto corpus = Prepare(BrownSpec(), dir.path(), 2);
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  EXPECT_EQ(CorpusDocuments(*corpus), expected);
  EXPECT_EQ(corpus->stats.documents, expected.size());
  EXPECT_EQ(corpus->stats.empty_dropped, empty);
  EXPECT_EQ(corpus->stats.duplicates_removed, dups);
  EXPECT_EQ(corpus->stats.input_files, 2u);
}

TEST(PrepareTest, DeduplicatesAcrossSourcesAndFiltersShortTexts) {
  TempDir in, out;
  WriteFile(in.Join("a.txt"), "alpha beta\nshared text\n\nx\nalpha beta\n");
  WriteFile(in.Join("b.jsonl"),
            "{\"text\": \"shared text\"}\n{\"text\": \"only in b\"}\n{\"text\": \"  \"}\n");
  bert::v1::CorpusSpec corpus;
  *corpus.add_sources() = TextSource(in.Join("a.txt"));
  *corpus.add_sources() = JsonlSource(in.Join("b.jsonl"));
  corpus.set_drop_empty(true);
  corpus.set_deduplicate(true);
  corpus.set_min_chars(2);
  auto c = Prepare(corpus, out.path(), 2);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(CorpusDocuments(*c),
            (std::vector<std::string>{"alpha beta", "shared text", "only in b"}));
  EXPECT_EQ(c->stats.duplicates_removed, 2u);
  EXPECT_EQ(c->stats.empty_dropped, 2u);
  EXPECT_EQ(c->stats.short_dropped, 1u);
  EXPECT_EQ(c->stats.lines, 8u);

  // Without deduplicate every copy stays.
  TempDir out2;
  corpus.set_deduplicate(false);
  auto c2 = Prepare(corpus, out2.path(), 1);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->stats.documents, 5u);
  EXPECT_EQ(c2->stats.duplicates_removed, 0u);
}

TEST(PrepareTest, SkipPolicyCountsBadLinesByReason) {
  TempDir in, out;
  WriteFile(in.Join("a.txt"), "good\nbad \xFF byte\n");
  WriteFile(in.Join("b.jsonl"), "{\"text\": \"fine\"}\n{oops\n{\"body\": 1}\n");
  bert::v1::CorpusSpec corpus;
  *corpus.add_sources() = TextSource(in.Join("a.txt"));
  *corpus.add_sources() = JsonlSource(in.Join("b.jsonl"));
  corpus.set_on_error("fail");
  auto failed = Prepare(corpus, out.path(), 1);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("a.txt:2: invalid UTF-8"), std::string::npos)
      << failed.status();
  EXPECT_FALSE(std::filesystem::exists(out.Join("manifest.json")));

  corpus.set_on_error("skip");
  TempDir out2;
  auto c = Prepare(corpus, out2.path(), 2);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(CorpusDocuments(*c), (std::vector<std::string>{"good", "fine"}));
  EXPECT_EQ(c->stats.skipped_invalid_utf8, 1u);
  EXPECT_EQ(c->stats.skipped_malformed_json, 1u);
  EXPECT_EQ(c->stats.skipped_missing_field, 1u);
  auto reloaded = PreparedCorpus::Load(out2.path());
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->stats.skipped(), 3u);

  corpus.set_on_error("ignore");
  EXPECT_EQ(Prepare(corpus, out2.path() + "/x", 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PrepareTest, FinalizeNeedsEveryWorker) {
  TempDir out;
  NullProgressSink sink;
  ASSERT_TRUE(PrepareWorker(BrownSpec(), out.path(), {0, 2, 2}, sink).ok());
  auto c = FinalizePrepare(out.path(), 2, {}, sink);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(c.status().message().find("worker 1 of 2"), std::string::npos);
}

// Dies (SIGKILL, no cleanup) at the n-th progress report, i.e. after data has
// gone into temporary files.
class DieAtProgress final : public ProgressSink {
 public:
  explicit DieAtProgress(int n) : n_(n) {}
  void Progress(int64_t, int64_t, std::string_view) override {
    if (--n_ == 0) ::kill(::getpid(), SIGKILL);
  }
  void Metric(std::string_view, double, int64_t) override {}
  void Log(std::string_view, std::string_view) override {}
  bool Cancelled() const override { return false; }

 private:
  std::atomic<int> n_;
};

TEST(PrepareTest, KilledMidWriteLeavesNoCompleteLookingFileAndRerunSucceeds) {
  bert::v1::CorpusSpec corpus = BrownSpec();
  corpus.set_shard_size_bytes(4 << 20);  // big units: the kill lands inside one
  TempDir clean, crashed;
  ASSERT_TRUE(Prepare(corpus, clean.path(), 1).ok());

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    DieAtProgress sink(2);
    absl::Status s = PrepareWorker(corpus, crashed.path(), {0, 1, 1}, sink);
    _exit(s.ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child should have been killed";
  // What the child left: temporary files, and only units it finished.
  int temps = 0;
  for (const auto& [name, contents] : DirContents(crashed.path())) {
    if (name.find(".tmp-") != std::string::npos) {
      ++temps;
      continue;
    }
    EXPECT_TRUE(name.rfind("parts/unit-", 0) == 0) << name;
  }
  EXPECT_GT(temps, 0);
  EXPECT_FALSE(std::filesystem::exists(crashed.Join("manifest.json")));
  NullProgressSink sink;
  EXPECT_FALSE(FinalizePrepare(crashed.path(), 1, {}, sink).ok());
  // A rerun in the same directory gives the same corpus as a clean run.
  auto c = Prepare(corpus, crashed.path(), 1);
  ASSERT_TRUE(c.ok()) << c.status();
  auto files = DirContents(crashed.path());
  std::erase_if(files, [](const auto& f) { return f.first.find(".tmp-") != std::string::npos; });
  EXPECT_EQ(files, DirContents(clean.path()));
}

}  // namespace
}  // namespace bert::data
