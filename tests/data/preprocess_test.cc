// preprocess: the article's token stream and blocks, the shuffle, splits,
// dtype, independence of the worker count, the on-disk format, crash safety.
#include "data/preprocess.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "absl/strings/str_split.h"
#include "data/numpy_permutation.h"
#include "data/packed_dataset.h"
#include "data/prepare.h"
#include "gtest/gtest.h"
#include "tests/data/data_test_util.h"
#include "tokenizer/tokenizer.h"

namespace bert::data {
namespace {

using bert::tokenizer::Tokenizer;
using testing::DirContents;
using testing::ReadAll;
using testing::TempDir;

// Prepared corpora shared by the tests (built once).
struct Corpora {
  TempDir lines_dir;   // brown.txt, one text per line
  TempDir docs_dir;    // brown-docs.jsonl, long documents
  TempDir sample_dir;  // the committed 400-line sample, for the quick tests
  Corpora() {
    NullProgressSink sink;
    bert::v1::CorpusSpec sample;
    *sample.add_sources() = testing::TextSource(testing::TestdataPath("brown-sample.txt"));
    sample.set_drop_empty(true);
    sample.set_shard_size_bytes(16 << 10);
    EXPECT_TRUE(PrepareWorker(sample, sample_dir.path(), {0, 1, 2}, sink).ok());
    EXPECT_TRUE(FinalizePrepare(sample_dir.path(), 1, {}, sink).ok());
    bert::v1::CorpusSpec lines;
    *lines.add_sources() = testing::TextSource(testing::BrownTextPath());
    lines.set_drop_empty(true);
    lines.set_shard_size_bytes(1 << 20);
    bert::v1::CorpusSpec docs;
    *docs.add_sources() = testing::JsonlSource(testing::BrownDocsPath());
    docs.set_drop_empty(true);
    docs.set_shard_size_bytes(1 << 20);
    EXPECT_TRUE(PrepareWorker(lines, lines_dir.path(), {0, 1, 2}, sink).ok());
    EXPECT_TRUE(FinalizePrepare(lines_dir.path(), 1, {}, sink).ok());
    EXPECT_TRUE(PrepareWorker(docs, docs_dir.path(), {0, 1, 2}, sink).ok());
    EXPECT_TRUE(FinalizePrepare(docs_dir.path(), 1, {}, sink).ok());
  }
};

const Corpora& GetCorpora() {
  static const Corpora corpora;  // removed when the test process exits
  return corpora;
}

std::vector<std::string> Texts(const std::string& corpus_dir) {
  auto corpus = PreparedCorpus::Load(corpus_dir);
  EXPECT_TRUE(corpus.ok());
  std::vector<std::string> texts;
  for (size_t i = 0; i < corpus->shards.size(); ++i) {
    std::vector<std::string> lines = absl::StrSplit(ReadAll(corpus->ShardPath(i)), '\n');
    lines.pop_back();
    texts.insert(texts.end(), lines.begin(), lines.end());
  }
  return texts;
}

bert::v1::PreprocessSpec Spec(int seq_len = 512, double validation = 0.0, bool split = false) {
  bert::v1::PreprocessSpec spec;
  spec.set_max_seq_length(seq_len);
  spec.set_shuffle_seed(34);
  spec.set_validation_fraction(validation);
  spec.set_split_long_documents(split);
  spec.set_memory_limit_mb(256);
  return spec;
}

absl::StatusOr<DatasetManifest> Preprocess(const std::string& corpus, const std::string& tokenizer,
                                           const bert::v1::PreprocessSpec& spec,
                                           const std::string& out, int workers, int threads,
                                           uint64_t shard_bytes = 256ULL << 20) {
  NullProgressSink sink;
  for (int i = 0; i < workers; ++i) {
    absl::Status s = PreprocessWorker(corpus, tokenizer, spec, out, {i, workers, threads}, sink);
    if (!s.ok()) return s;
  }
  return FinalizePreprocess(corpus, tokenizer, spec, out, workers, {threads, shard_bytes}, sink);
}

// The article, in plain code: tokenizer(text, truncation=True, max_length=L)
// for every text, chain them, cut blocks of L, drop the remainder.
struct Reference {
  std::vector<std::vector<uint32_t>> blocks;
  uint64_t tokens = 0;
  uint64_t truncated = 0;
};

Reference ArticleBlocks(const std::vector<std::string>& texts, const Tokenizer& tok, size_t seq_len,
                        bool split) {
  Reference r;
  std::vector<uint32_t> stream;
  bert::tokenizer::EncodeOptions full;
  for (const std::string& text : texts) {
    if (!split) {
      bert::tokenizer::EncodeOptions options;
      options.max_length = seq_len;
      std::vector<uint32_t> ids = tok.Encode(text, options).ids;
      r.truncated += tok.Encode(text, full).ids.size() - ids.size();
      stream.insert(stream.end(), ids.begin(), ids.end());
    } else {
      bert::tokenizer::EncodeOptions plain;
      plain.add_special_tokens = false;
      std::vector<uint32_t> content = tok.Encode(text, plain).ids;
      size_t off = 0;
      do {
        size_t take = std::min(seq_len - 2, content.size() - off);
        stream.push_back(tok.special_ids().cls);
        stream.insert(stream.end(), content.begin() + off, content.begin() + off + take);
        stream.push_back(tok.special_ids().sep);
        off += take;
      } while (off < content.size());
    }
  }
  r.tokens = stream.size();
  for (size_t i = 0; i + seq_len <= stream.size(); i += seq_len) {
    r.blocks.emplace_back(stream.begin() + i, stream.begin() + i + seq_len);
  }
  return r;
}

std::vector<std::vector<uint32_t>> AllBlocks(const PackedDataset& ds, const std::string& split) {
  std::vector<std::vector<uint32_t>> blocks;
  for (uint64_t i = 0; i < ds.num_blocks(split); ++i) {
    auto b = ds.Block(split, i);
    EXPECT_TRUE(b.ok());
    blocks.push_back(*b);
  }
  return blocks;
}

TEST(PreprocessTest, BlocksAreTheArticlesGroupTextsInNumpyShuffleOrder) {
  const std::string& tok_path = testing::TestTokenizerPath();
  auto tok = Tokenizer::Load(tok_path);
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const std::string& corpus : {GetCorpora().lines_dir.path(), GetCorpora().docs_dir.path()}) {
    TempDir out;
    auto m = Preprocess(corpus, tok_path, Spec(), out.path(), 1, 2);
    ASSERT_TRUE(m.ok()) << m.status();
    std::vector<std::string> texts = Texts(corpus);
    Reference ref = ArticleBlocks(texts, *tok, 512, false);
    ASSERT_GT(ref.blocks.size(), 2u);
    EXPECT_EQ(m->stats.documents, texts.size());
    EXPECT_EQ(m->stats.tokens, ref.tokens);
    EXPECT_EQ(m->stats.tokens_truncated, ref.truncated);
    EXPECT_EQ(m->stats.tokens_dropped_remainder, ref.tokens % 512);
    EXPECT_EQ(m->dtype, "uint16");
    EXPECT_EQ(m->splits["train"].blocks, ref.blocks.size());
    // brown-docs holds long documents: the article truncates them, and we say so.
    if (corpus == GetCorpora().docs_dir.path()) {
      EXPECT_GT(m->stats.tokens_truncated, 0u);
    }
    auto ds = PackedDataset::Open(out.path(), /*verify=*/true);
    ASSERT_TRUE(ds.ok()) << ds.status();
    // datasets' shuffle(seed=34): output block p is input block permutation[p].
    std::vector<uint64_t> order = NumpyPermutation(ref.blocks.size(), 34);
    std::vector<std::vector<uint32_t>> got = AllBlocks(*ds, "train");
    ASSERT_EQ(got.size(), ref.blocks.size());
    for (size_t p = 0; p < got.size(); ++p) {
      ASSERT_EQ(got[p], ref.blocks[order[p]]) << "block " << p;
    }
  }
}

TEST(PreprocessTest, SplitLongDocumentsKeepsEveryToken) {
  const std::string& tok_path = testing::TestTokenizerPath();
  auto tok = Tokenizer::Load(tok_path);
  ASSERT_TRUE(tok.ok());
  const std::string& corpus = GetCorpora().docs_dir.path();
  TempDir out;
  auto m = Preprocess(corpus, tok_path, Spec(128, 0.0, true), out.path(), 1, 2);
  ASSERT_TRUE(m.ok()) << m.status();
  Reference ref = ArticleBlocks(Texts(corpus), *tok, 128, true);
  EXPECT_EQ(m->stats.tokens_truncated, 0u);
  EXPECT_EQ(m->stats.tokens, ref.tokens);
  EXPECT_TRUE(m->split_long_documents);
  auto ds = PackedDataset::Open(out.path());
  ASSERT_TRUE(ds.ok());
  std::vector<uint64_t> order = NumpyPermutation(ref.blocks.size(), 34);
  std::vector<std::vector<uint32_t>> got = AllBlocks(*ds, "train");
  ASSERT_EQ(got.size(), ref.blocks.size());
  for (size_t p = 0; p < got.size(); ++p) ASSERT_EQ(got[p], ref.blocks[order[p]]);
}

TEST(PreprocessTest, ValidationSplitTakesTheFirstBlocksOfTheShuffle) {
  const std::string& tok_path = testing::TestTokenizerPath();
  auto tok = Tokenizer::Load(tok_path);
  ASSERT_TRUE(tok.ok());
  const std::string& corpus = GetCorpora().sample_dir.path();
  TempDir out;
  // Small shards: several files per split.
  auto m = Preprocess(corpus, tok_path, Spec(64, 0.1), out.path(), 1, 2, 64 * 2 * 50);
  ASSERT_TRUE(m.ok()) << m.status();
  Reference ref = ArticleBlocks(Texts(corpus), *tok, 64, false);
  const uint64_t n = ref.blocks.size();
  const uint64_t v = static_cast<uint64_t>(std::ceil(0.1 * n));
  EXPECT_EQ(m->splits["validation"].blocks, v);
  EXPECT_EQ(m->splits["train"].blocks, n - v);
  EXPECT_GT(m->splits["train"].shards.size(), 1u);
  auto ds = PackedDataset::Open(out.path(), true);
  ASSERT_TRUE(ds.ok()) << ds.status();
  std::vector<uint64_t> order = NumpyPermutation(n, 34);
  auto val = AllBlocks(*ds, "validation");
  auto train = AllBlocks(*ds, "train");
  for (uint64_t p = 0; p < v; ++p) ASSERT_EQ(val[p], ref.blocks[order[p]]);
  for (uint64_t p = 0; p < n - v; ++p) ASSERT_EQ(train[p], ref.blocks[order[v + p]]);
  // Random access past the end is an error, not a crash.
  EXPECT_EQ(ds->Block("train", n - v).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ds->Block("test", 0).status().code(), absl::StatusCode::kNotFound);
}

TEST(PreprocessTest, ByteIdenticalForAnyWorkerAndThreadCount) {
  const std::string& tok_path = testing::TestTokenizerPath();
  const std::string& corpus = GetCorpora().lines_dir.path();
  TempDir a, b, c;
  ASSERT_TRUE(Preprocess(corpus, tok_path, Spec(128, 0.05), a.path(), 1, 1).ok());
  ASSERT_TRUE(Preprocess(corpus, tok_path, Spec(128, 0.05), b.path(), 2, 2).ok());
  ASSERT_TRUE(Preprocess(corpus, tok_path, Spec(128, 0.05), c.path(), 5, 3).ok());
  auto files = DirContents(a.path());
  EXPECT_EQ(files, DirContents(b.path()));
  EXPECT_EQ(files, DirContents(c.path()));
  EXPECT_FALSE(std::filesystem::exists(a.Join("parts")));
}

TEST(PreprocessTest, LargeVocabulariesUseUint32) {
  auto tok = Tokenizer::Load(testing::TestTokenizerPath());
  ASSERT_TRUE(tok.ok());
  std::vector<std::string> vocab;
  for (uint32_t id = 0; id < tok->vocab_size(); ++id) vocab.emplace_back(tok->IdToToken(id));
  while (vocab.size() < 70000) vocab.push_back("zzfiller" + std::to_string(vocab.size()));
  auto big = Tokenizer::FromVocab(vocab, true);
  ASSERT_TRUE(big.ok()) << big.status();
  TempDir tok_dir, out16, out32;
  ASSERT_TRUE(big->Save(tok_dir.path()).ok());
  const std::string& corpus = GetCorpora().sample_dir.path();
  // vocab.txt: loads faster than a 70000-entry tokenizer.json.
  auto m32 = Preprocess(corpus, tok_dir.Join("vocab.txt"), Spec(128), out32.path(), 1, 2);
  ASSERT_TRUE(m32.ok()) << m32.status();
  EXPECT_EQ(m32->dtype, "uint32");
  EXPECT_EQ(m32->vocab_size, 70000u);
  auto ds = PackedDataset::Open(out32.path(), true);
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(std::filesystem::file_size(out32.Join(m32->splits["train"].shards[0].file)),
            m32->splits["train"].blocks * 128 * 4);
  auto b0 = ds->Block("train", 0);
  ASSERT_TRUE(b0.ok());
  EXPECT_EQ(b0->size(), 128u);
}

TEST(PreprocessTest, TruncatedOrCorruptShardsAreDetected) {
  const std::string& tok_path = testing::TestTokenizerPath();
  TempDir out;
  auto m = Preprocess(GetCorpora().sample_dir.path(), tok_path, Spec(64), out.path(), 1, 2);
  ASSERT_TRUE(m.ok());
  const std::string shard = out.Join(m->splits["train"].shards[0].file);
  std::string bytes = ReadAll(shard);
  bytes[bytes.size() / 2] ^= 0x55;
  testing::WriteFile(shard, bytes);
  EXPECT_TRUE(PackedDataset::Open(out.path()).ok());  // sizes only
  auto verified = PackedDataset::Open(out.path(), true);
  EXPECT_EQ(verified.status().code(), absl::StatusCode::kDataLoss);
  testing::WriteFile(shard, bytes.substr(0, bytes.size() - 3));
  auto truncated = PackedDataset::Open(out.path());
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("truncated"), std::string::npos);
}

TEST(PreprocessTest, KilledFinalizeLeavesNoDatasetAndRerunMatches) {
  const std::string& tok_path = testing::TestTokenizerPath();
  const std::string& corpus = GetCorpora().sample_dir.path();
  TempDir clean, crashed;
  ASSERT_TRUE(Preprocess(corpus, tok_path, Spec(64), clean.path(), 1, 1, 64 * 2 * 40).ok());
  NullProgressSink quiet;
  ASSERT_TRUE(PreprocessWorker(corpus, tok_path, Spec(64), crashed.path(), {0, 1, 1}, quiet).ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct Killer final : ProgressSink {
      void Progress(int64_t, int64_t, std::string_view unit) override {
        if (unit == "blocks") ::kill(::getpid(), SIGKILL);
      }
      void Metric(std::string_view, double, int64_t) override {}
      void Log(std::string_view, std::string_view) override {}
      bool Cancelled() const override { return false; }
    } killer;
    auto m =
        FinalizePreprocess(corpus, tok_path, Spec(64), crashed.path(), 1, {1, 64 * 2 * 40}, killer);
    _exit(m.ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(std::filesystem::exists(crashed.Join("manifest.json")));
  EXPECT_EQ(PackedDataset::Open(crashed.path()).status().code(), absl::StatusCode::kNotFound);
  auto m =
      FinalizePreprocess(corpus, tok_path, Spec(64), crashed.path(), 1, {1, 64 * 2 * 40}, quiet);
  ASSERT_TRUE(m.ok()) << m.status();
  auto files = DirContents(crashed.path());
  std::erase_if(files, [](const auto& f) { return f.first.find(".tmp-") != std::string::npos; });
  EXPECT_EQ(files, DirContents(clean.path()));
}

TEST(PreprocessTest, TooSmallCorpusOrMissingTokenizerAreClearErrors) {
  TempDir in, corpus, out;
  testing::WriteFile(in.Join("tiny.txt"), "hello world\n");
  bert::v1::CorpusSpec spec;
  *spec.add_sources() = testing::TextSource(in.Join("tiny.txt"));
  NullProgressSink sink;
  ASSERT_TRUE(PrepareWorker(spec, corpus.path(), {0, 1, 1}, sink).ok());
  ASSERT_TRUE(FinalizePrepare(corpus.path(), 1, {}, sink).ok());
  auto m = Preprocess(corpus.path(), testing::TestTokenizerPath(), Spec(), out.path(), 1, 1);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("less than one block"), std::string::npos) << m.status();
  EXPECT_FALSE(std::filesystem::exists(out.Join("manifest.json")));
  auto missing = Preprocess(corpus.path(), in.Join("no-tokenizer.json"), Spec(), out.path(), 1, 1);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no-tokenizer.json"), std::string::npos)
      << missing.status();
}

// preprocess.memory_limit_mb bounds what preprocess holds: a limit too small
// for the shuffle's block index is a clear error naming the field (and no
// dataset), and a small limit that fits (smaller tokenizing chunks and write
// buffers) gives the same dataset as a large one. The limits here are below
// the spec's floor of 64 MiB so that a small corpus can cross them: 70,000
// lines of 6 words are 70,000 blocks of 8 tokens, whose index needs 560,000
// bytes, more than half of 1 MiB.
TEST(PreprocessTest, MemoryLimitBoundsTheShuffleAndLeavesTheOutputAlone) {
  TempDir in, corpus;
  std::string text;
  for (int i = 0; i < 70000; ++i) text += "the the the the the the\n";
  testing::WriteFile(in.Join("same.txt"), text);
  bert::v1::CorpusSpec corpus_spec;
  *corpus_spec.add_sources() = testing::TextSource(in.Join("same.txt"));
  NullProgressSink sink;
  ASSERT_TRUE(PrepareWorker(corpus_spec, corpus.path(), {0, 1, 1}, sink).ok());
  ASSERT_TRUE(FinalizePrepare(corpus.path(), 1, {}, sink).ok());
  const auto run = [&](int64_t limit_mb, const std::string& out) {
    bert::v1::PreprocessSpec spec = Spec(8);
    spec.set_memory_limit_mb(limit_mb);
    return Preprocess(corpus.path(), testing::TestTokenizerPath(), spec, out, 1, 2);
  };
  TempDir tight, small, large;
  auto refused = run(1, tight.path());
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_NE(refused.status().message().find("preprocess.memory_limit_mb"), std::string::npos)
      << refused.status();
  EXPECT_FALSE(std::filesystem::exists(tight.Join("manifest.json")));
  auto fits = run(2, small.path());
  ASSERT_TRUE(fits.ok()) << fits.status();
  auto roomy = run(256, large.path());
  ASSERT_TRUE(roomy.ok()) << roomy.status();
  EXPECT_EQ(fits->splits.at("train").blocks, 70000u);
  EXPECT_EQ(ReadAll(small.Join("manifest.json")), ReadAll(large.Join("manifest.json")));
  for (const auto& shard : fits->splits.at("train").shards) {
    EXPECT_EQ(ReadAll(small.Join(shard.file)), ReadAll(large.Join(shard.file))) << shard.file;
  }
}

TEST(PreprocessTest, BertctlInspectDecodesBlocks) {
  const char* bin = getenv("BERT_BIN_DIR");
  std::string bertctl = std::string(bin != nullptr ? bin : "") + "/bertctl";
  if (bin == nullptr || !std::filesystem::exists(bertctl)) {
    GTEST_SKIP() << "bertctl is not built in " << bertctl;
  }
  const std::string& tok_path = testing::TestTokenizerPath();
  TempDir out;
  auto m = Preprocess(GetCorpora().sample_dir.path(), tok_path, Spec(64), out.path(), 1, 2);
  ASSERT_TRUE(m.ok());
  auto ds = PackedDataset::Open(out.path());
  auto tok = Tokenizer::Load(tok_path);
  ASSERT_TRUE(ds.ok() && tok.ok());
  std::string expected = tok->Decode(*ds->Block("train", 3));
  std::string cmd = bertctl + " dataset inspect " + out.path() + " --block 3 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) output.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << output;
  EXPECT_NE(output.find("\"format\": \"bert-packed-dataset\""), std::string::npos) << output;
  EXPECT_NE(output.find(expected), std::string::npos) << output;
  std::string bad = bertctl + " dataset inspect " + out.Join("nope") + " >/dev/null 2>&1";
  EXPECT_NE(system(bad.c_str()), 0);
}

}  // namespace
}  // namespace bert::data
