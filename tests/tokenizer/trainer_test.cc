// The WordPiece trainer: determinism, options, streaming, errors.
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "tests/tokenizer/test_util.h"
#include "tokenizer/wordpiece_trainer.h"

namespace bert::tokenizer {
namespace {

using testing::TestData;

Tokenizer TrainOrDie(const WordPieceTrainerOptions& options, const std::string& file) {
  NullProgressSink sink;
  auto tok = TrainFromFiles({file}, options, sink);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return std::move(tok).value();
}

TEST(TrainerTest, SameVocabularyForAnyNumberOfThreadsAndEveryRun) {
  WordPieceTrainerOptions options;
  options.vocab_size = 3000;
  options.special_tokens = WordPieceTrainerOptions::BertSpecialTokens();
  std::string reference;
  for (int threads : {1, 2, 3, 8, 2}) {
    options.threads = threads;
    std::string json = TrainOrDie(options, TestData("train_slice.txt")).ToJson();
    if (reference.empty()) reference = json;
    EXPECT_EQ(json, reference) << threads << " threads";
  }
}

TEST(TrainerTest, SpecialTokensThenAlphabetInCodePointOrderThenContinuations) {
  WordPieceTrainerOptions options;
  options.vocab_size = 500;
  options.special_tokens = WordPieceTrainerOptions::BertSpecialTokens();
  Tokenizer tok = TrainOrDie(options, TestData("train_slice.txt"));
  EXPECT_EQ(tok.vocab_size(), 500u);
  for (uint32_t id = 0; id < 5; ++id) EXPECT_EQ(tok.IdToToken(id), options.special_tokens[id]);
  // Alphabet: single characters in increasing order, then "##" characters.
  uint32_t id = 5;
  std::string previous;
  while (tok.IdToToken(id).substr(0, 2) != "##") {
    std::string token(tok.IdToToken(id));
    EXPECT_LT(previous, token);
    previous = token;
    ++id;
  }
  EXPECT_GT(id, 30u);
  // "##" characters: the one in the most distinct words first (English: e),
  // rare ones late.
  EXPECT_EQ(tok.IdToToken(id), "##e");
  EXPECT_LT(*tok.TokenToId("##t"), *tok.TokenToId("##q"));
  std::set<std::string> continuation;
  while (tok.IdToToken(id).size() <= 3 && tok.IdToToken(id).substr(0, 2) == "##") {
    EXPECT_TRUE(continuation.emplace(tok.IdToToken(id)).second);
    ++id;
  }
  EXPECT_GT(continuation.size(), 26u);
  EXPECT_EQ(tok.special_ids().cls, 2u);
  EXPECT_EQ(tok.Encode("").ids, (std::vector<uint32_t>{2, 3}));
  // The most frequent merge of English text comes first.
  EXPECT_EQ(tok.IdToToken(id), "th");
}

TEST(TrainerTest, MinFrequencyAndLimitAlphabet) {
  WordPieceTrainerOptions options;
  options.min_frequency = 1u << 30;  // no merge is that frequent
  Tokenizer chars_only = TrainOrDie(options, TestData("train_slice.txt"));
  for (uint32_t id = 0; id < chars_only.vocab_size(); ++id) {
    std::string_view t = chars_only.IdToToken(id);
    if (t.substr(0, 2) == "##") t.remove_prefix(2);
    EXPECT_LE(t.size(), 4u) << t;  // one UTF-8 character
  }
  options.min_frequency = 0;
  options.vocab_size = 1000;
  options.limit_alphabet = 10;
  options.initial_alphabet = {"\xE2\x82\xAC"};  // €, not in the text, but always kept
  Tokenizer limited = TrainOrDie(options, TestData("train_slice.txt"));
  size_t singles = 0;
  for (uint32_t id = 0; id < limited.vocab_size(); ++id) {
    std::string_view t = limited.IdToToken(id);
    if (t.substr(0, 2) != "##" && (t.size() == 1 || t == "\xE2\x82\xAC")) ++singles;
  }
  EXPECT_EQ(singles, 10u);
  EXPECT_TRUE(limited.TokenToId("\xE2\x82\xAC").has_value());
  EXPECT_TRUE(limited.TokenToId("e").has_value());   // frequent characters stay
  EXPECT_FALSE(limited.TokenToId("q").has_value());  // rare ones go
}

TEST(TrainerTest, StreamingInPiecesEqualsOneBuffer) {
  std::string text = testing::ReadOrDie(TestData("train_slice.txt"));
  WordPieceTrainerOptions options;
  options.vocab_size = 2000;
  options.threads = 2;
  WordPieceTrainer whole(options);
  whole.FeedLines(text);
  WordPieceTrainer pieces(options);
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    lines.push_back(std::string_view(text).substr(pos, nl - pos));
    pos = nl + 1;
  }
  pieces.Feed(std::span<const std::string_view>(lines).subspan(0, 100));
  pieces.Feed(std::span<const std::string_view>(lines).subspan(100));
  EXPECT_EQ(whole.distinct_words(), pieces.distinct_words());
  auto a = whole.Train();
  auto b = pieces.Train();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ToJson(), b->ToJson());
}

class CancelAfter final : public ProgressSink {
 public:
  void Progress(int64_t done, int64_t total, std::string_view unit) override { ++reports; }
  void Metric(std::string_view, double, int64_t) override {}
  void Log(std::string_view, std::string_view) override {}
  bool Cancelled() const override { return reports.load() > 0; }
  std::atomic<int> reports{0};
};

TEST(TrainerTest, HonoursCancellationAndReportsErrors) {
  CancelAfter cancel;
  WordPieceTrainerOptions options;
  auto tok =
      TrainFromFiles({TestData("train_slice.txt"), TestData("train_slice.txt")}, options, cancel);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kCancelled);
  NullProgressSink sink;
  auto missing = TrainFromFiles({"/nonexistent/corpus.txt"}, options, sink);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/corpus.txt"), std::string::npos);
  EXPECT_FALSE(TrainFromFiles({}, options, sink).ok());
}

TEST(TrainerTest, SavedFilesLoadBack) {
  WordPieceTrainerOptions options;
  options.vocab_size = 800;
  options.special_tokens = WordPieceTrainerOptions::BertSpecialTokens();
  Tokenizer tok = TrainOrDie(options, TestData("train_slice.txt"));
  testing::TempDir dir;
  ASSERT_TRUE(tok.Save(dir.path()).ok());
  auto json = Tokenizer::Load(dir.File("tokenizer.json"));
  auto vocab = Tokenizer::Load(dir.File("vocab.txt"));
  ASSERT_TRUE(json.ok() && vocab.ok());
  EXPECT_EQ(json->Fingerprint(), tok.Fingerprint());
  std::string text = "The jury said it did find that many of Georgia's laws are outmoded.";
  EXPECT_EQ(json->Encode(text).ids, tok.Encode(text).ids);
  EXPECT_EQ(vocab->Encode(text).ids, tok.Encode(text).ids);
}

}  // namespace
}  // namespace bert::tokenizer
