// What a corpus spec may make an agent read: regular files only (no devices,
// FIFOs, sockets), only under the --data-root directories (symlinks resolved),
// and lines bounded after decompression (a gzip bomb without newlines). Each
// violation is an INVALID_ARGUMENT (a DATA_ERROR for the stage) naming the
// path and the rule, returned in-process: the caller (the agent) lives on.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "absl/strings/match.h"
#include "data/input_plan.h"
#include "data/line_reader.h"
#include "data/prepare.h"
#include "gtest/gtest.h"
#include "protocol/failure_cause.h"
#include "tests/data/data_test_util.h"

namespace bert::data {
namespace {

namespace fs = std::filesystem;
using testing::GzipCompress;
using testing::TempDir;
using testing::TextSource;
using testing::WriteFile;

class InputPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.Join("root");
    fs::create_directories(root_);
    WriteFile(root_ + "/ok.txt", "a document of some length\nanother document here\n");
    WriteFile(tmp_.Join("secret.txt"), "outside the root\n");
  }

  // PrepareWorker on one source path under the policy; fails the test rather
  // than hanging when the call blocks.
  absl::Status Prepare(const std::string& path, InputPolicy policy, const std::string& unblock = "") {
    bert::v1::CorpusSpec corpus;
    *corpus.add_sources() = TextSource(path);
    PrepareOptions options;
    options.threads = 1;
    options.input_policy = std::move(policy);
    const std::string out = tmp_.Join("out-" + std::to_string(++runs_));
    auto result = std::async(std::launch::async, [&] {
      NullProgressSink sink;
      return PrepareWorker(corpus, out, options, sink);
    });
    if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      ADD_FAILURE() << "prepare blocked on " << path;
      if (!unblock.empty()) WriteFile(unblock, "x\n");
    }
    return result.get();
  }
  InputPolicy Rooted() const { return InputPolicy{{root_}}; }

  static void ExpectRefused(const absl::Status& s, const std::string& path,
                            const std::string& rule) {
    ASSERT_FALSE(s.ok()) << path;
    EXPECT_EQ(protocol::CauseOf(s), v1::DATA_ERROR) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), path)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), rule)) << s;
  }

  TempDir tmp_;
  std::string root_;
  int runs_ = 0;
};

TEST_F(InputPolicyTest, AFileUnderTheRootIsRead) {
  EXPECT_TRUE(Prepare(root_ + "/ok.txt", Rooted()).ok());
  EXPECT_TRUE(Prepare(root_, Rooted()).ok());  // a directory source
}

TEST_F(InputPolicyTest, DevZeroIsRefused) {
  ExpectRefused(Prepare("/dev/zero", {}), "/dev/zero", "not a regular file");
  ExpectRefused(Prepare("/dev/zero", Rooted()), "/dev/zero", "not a regular file");
}

TEST_F(InputPolicyTest, AFifoIsRefusedWithoutBlocking) {
  const std::string fifo = root_ + "/corpus.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ExpectRefused(Prepare(fifo, Rooted(), fifo), fifo, "not a regular file");
}

TEST_F(InputPolicyTest, AFileOutsideTheRootsIsRefused) {
  const std::string secret = tmp_.Join("secret.txt");
  ExpectRefused(Prepare(secret, Rooted()), secret, "outside this agent's data roots");
  // Dot-dot tricks are resolved before the check.
  ExpectRefused(Prepare(root_ + "/../secret.txt", Rooted()), "secret.txt",
                "outside this agent's data roots");
}

TEST_F(InputPolicyTest, ASymlinkOutOfTheRootIsRefused) {
  const std::string link = root_ + "/link.txt";
  fs::create_symlink(tmp_.Join("secret.txt"), link);
  ExpectRefused(Prepare(link, Rooted()), link, "outside this agent's data roots");
  // Also when found by listing a directory source.
  ExpectRefused(Prepare(root_, Rooted()), link, "outside this agent's data roots");
}

// Planned under the root, then swapped for a link out of it before the
// reader opens it: the open descriptor is checked, not the old plan.
TEST_F(InputPolicyTest, ALinkSwappedInAfterPlanningIsRefusedAtOpen) {
  bert::v1::CorpusSpec corpus;
  const std::string path = root_ + "/ok.txt";
  *corpus.add_sources() = TextSource(path);
  auto units = PlanInputUnits(corpus, 0, Rooted());
  ASSERT_TRUE(units.ok()) << units.status();
  ASSERT_EQ(units->size(), 1u);
  const InputUnit& unit = (*units)[0];
  ASSERT_FALSE(unit.roots.empty());
  // Opened while still in place: fine.
  EXPECT_TRUE(OpenInputStream(unit.path, unit.compression, unit.start, unit.end, unit.roots).ok());
  fs::remove(path);
  fs::create_symlink(tmp_.Join("secret.txt"), path);
  auto opened = OpenInputStream(unit.path, unit.compression, unit.start, unit.end, unit.roots);
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(absl::StrContains(opened.status().message(), "outside this agent's data roots"))
      << opened.status();
  EXPECT_TRUE(absl::StrContains(opened.status().message(), "secret.txt")) << opened.status();
  // Without roots (an unconfined agent) the same open succeeds: the check is
  // what refused it.
  EXPECT_TRUE(OpenInputStream(unit.path, unit.compression, unit.start, unit.end).ok());
}

TEST_F(InputPolicyTest, ARootPrefixIsNotARoot) {
  // /x/root-evil is not under /x/root.
  const std::string evil = root_ + "-evil";
  fs::create_directories(evil);
  WriteFile(evil + "/a.txt", "text here\n");
  ExpectRefused(Prepare(evil + "/a.txt", Rooted()), evil, "outside this agent's data roots");
}

TEST_F(InputPolicyTest, AGzipBombWithoutNewlinesHitsTheLineBound) {
  const std::string bomb = root_ + "/bomb.txt.gz";
  WriteFile(bomb, GzipCompress(std::string(8 << 20, 'a')));  // 8 MiB, no newline
  InputPolicy policy = Rooted();
  policy.max_line_bytes = 1 << 20;
  ExpectRefused(Prepare(bomb, policy), bomb, "is longer than 1048576 bytes");
}

TEST_F(InputPolicyTest, TheDefaultLineBoundHolds) {
  const std::string bomb = root_ + "/bomb.txt.gz";
  WriteFile(bomb, GzipCompress(std::string(20 << 20, '\0')));  // 20 MiB of NULs, no newline
  ExpectRefused(Prepare(bomb, Rooted()), bomb, "is longer than 16777216 bytes");
}

TEST_F(InputPolicyTest, LineReaderNeverGrowsPastItsBound) {
  const std::string path = tmp_.Join("long.txt");
  WriteFile(path, "short\n" + std::string(5000, 'x') + "\nafter\n");
  auto stream = OpenInputStream(path, Compression::kNone);
  ASSERT_TRUE(stream.ok());
  LineReader lines(*std::move(stream), 64, 4096);
  std::string_view line;
  ASSERT_TRUE(*lines.Next(&line));
  EXPECT_EQ(line, "short");
  auto next = lines.Next(&line);
  ASSERT_FALSE(next.ok());
  EXPECT_TRUE(absl::StrContains(next.status().message(), path + ": line 2 is longer than 4096"))
      << next.status();
  // A line of exactly the bound is fine.
  WriteFile(path, std::string(4096, 'y') + "\nz");
  auto again = OpenInputStream(path, Compression::kNone);
  ASSERT_TRUE(again.ok());
  LineReader exact(*std::move(again), 64, 4096);
  ASSERT_TRUE(*exact.Next(&line));
  EXPECT_EQ(line.size(), 4096u);
  ASSERT_TRUE(*exact.Next(&line));
  EXPECT_EQ(line, "z");
}

// Files uploaded from the submitting machine (the agent passes them as
// InputPolicy::supplied): a source reads exactly those, in order, in place of
// its spec paths, from wherever the agent keeps them (outside the roots), with
// its compression judged by the file's original name. Other sources keep
// every rule.
TEST_F(InputPolicyTest, SuppliedFilesReplaceASourcesPathsAndOnlyThoseAreReadOutsideTheRoots) {
  fs::create_directories(tmp_.Join("job/inputs"));
  const std::string first = tmp_.Join("job/inputs/aaaa");   // a content-addressed name
  const std::string second = tmp_.Join("job/inputs/bbbb");
  WriteFile(first, GzipCompress("uploaded document one\nuploaded document two\n"));
  WriteFile(second, "uploaded document three\n");
  bert::v1::CorpusSpec corpus;
  // The spec's own path (on the submitting machine) is never looked at.
  *corpus.add_sources() = TextSource("/home/someone/corpus/*.txt");
  InputPolicy policy = Rooted();
  policy.supplied[0] = {{first, "/home/someone/corpus/a.txt.gz"},
                        {second, "/home/someone/corpus/b.txt"}};
  auto units = PlanInputUnits(corpus, 0, policy);
  ASSERT_TRUE(units.ok()) << units.status();
  ASSERT_EQ(units->size(), 2u);
  EXPECT_EQ((*units)[0].path, first);
  EXPECT_EQ((*units)[0].compression, Compression::kGzip);  // by its original name
  EXPECT_EQ((*units)[1].path, second);
  EXPECT_EQ((*units)[1].compression, Compression::kNone);

  PrepareOptions options;
  options.threads = 1;
  options.input_policy = policy;
  NullProgressSink sink;
  const std::string out = tmp_.Join("supplied-out");
  ASSERT_TRUE(PrepareWorker(corpus, out, options, sink).ok());
  auto prepared = FinalizePrepare(out, 1, {}, sink);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  uint64_t documents = 0;
  for (const PreparedShard& shard : prepared->shards) documents += shard.documents;
  EXPECT_EQ(documents, 3u);

  // A second source that is not supplied still may not leave the roots.
  *corpus.add_sources() = TextSource(tmp_.Join("secret.txt"));
  units = PlanInputUnits(corpus, 0, policy);
  ExpectRefused(units.status(), "secret.txt", "outside this agent's data roots");
  // Nor may a supplied path be anything but a regular file.
  policy.supplied[0] = {{"/dev/zero", "corpus.txt"}};
  ExpectRefused(PlanInputUnits(corpus, 0, policy).status(), "/dev/zero", "not a regular file");
}

}  // namespace
}  // namespace bert::data
