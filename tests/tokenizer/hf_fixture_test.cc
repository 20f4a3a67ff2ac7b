// Agreement with Hugging Face `tokenizers`: fixtures it produced (committed in
// testdata/, see generate.sh), and, when ../shared and the installed
// reference are present, the whole Brown corpus.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/progress_sink.h"
#include "tests/tokenizer/test_util.h"
#include "tokenizer/line_encoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/word_splitter.h"
#include "tokenizer/wordpiece_trainer.h"

namespace bert::tokenizer {
namespace {

using testing::Lines;
using testing::ReadOrDie;
using testing::TestData;

Tokenizer LoadOrDie(const std::string& path) {
  auto tok = Tokenizer::Load(path);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return std::move(tok).value();
}

std::string JoinIds(const std::vector<uint32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  return out;
}

// Fraction of `expected` lines that `actual` matches, reporting the first mismatches.
double LineAgreement(const std::vector<std::string>& expected,
                     const std::vector<std::string>& actual,
                     const std::vector<std::string_view>& input) {
  EXPECT_EQ(expected.size(), actual.size());
  size_t same = 0;
  int reported = 0;
  for (size_t i = 0; i < std::min(expected.size(), actual.size()); ++i) {
    if (expected[i] == actual[i]) {
      ++same;
    } else if (reported++ < 5) {
      ADD_FAILURE() << "line " << i + 1 << ": " << input[i] << "\n  hf:   " << expected[i]
                    << "\n  ours: " << actual[i];
    }
  }
  return expected.empty() ? 1.0 : static_cast<double>(same) / static_cast<double>(expected.size());
}

std::vector<std::string> EncodeAll(const Tokenizer& tok,
                                   const std::vector<std::string_view>& lines) {
  std::vector<std::vector<uint32_t>> rows;
  EncodeLines(tok, lines, {}, &rows);
  std::vector<std::string> out;
  for (const auto& row : rows) out.push_back(JoinIds(row));
  return out;
}

TEST(HfFixtureTest, EncodesLikeHuggingFaceWithItsTrainedTokenizer) {
  Tokenizer tok = LoadOrDie(TestData("hf_slice.json"));
  std::string text = ReadOrDie(TestData("encode_slice.txt"));
  std::vector<std::string_view> lines = SplitLines(text);
  std::vector<std::string> expected = Lines(ReadOrDie(TestData("encode_slice.ids")));
  ASSERT_GE(lines.size(), 300u);
  EXPECT_EQ(LineAgreement(expected, EncodeAll(tok, lines), lines), 1.0);
}

void CheckEdgeCases(const std::string& tokenizer_file, const std::string& cases_file) {
  Tokenizer tok = LoadOrDie(TestData(tokenizer_file));
  nlohmann::json cases = nlohmann::json::parse(ReadOrDie(TestData(cases_file)));
  ASSERT_GE(cases.size(), 60u);
  BertNormalizerOptions normalizer;
  normalizer.lowercase = tok.lowercase();
  WordSplitter splitter(normalizer);
  WordSplitter::Scratch scratch;
  for (const auto& c : cases) {
    std::string text = c["text"];
    std::vector<std::string> words;
    splitter.Split<false>(text, scratch,
                          [&](std::string_view w, const auto*) { words.emplace_back(w); });
    EXPECT_EQ(words, c["pretokens"].get<std::vector<std::string>>()) << text;
    EncodeOptions options;
    options.add_special_tokens = false;
    options.with_tokens = true;
    Encoding e = tok.Encode(text, options);
    EXPECT_EQ(e.ids, c["ids"].get<std::vector<uint32_t>>()) << text;
    EXPECT_EQ(e.tokens, c["tokens"].get<std::vector<std::string>>()) << text;
    if (c.contains("ids_special")) {
      EXPECT_EQ(tok.Encode(text).ids, c["ids_special"].get<std::vector<uint32_t>>()) << text;
      Encoding pair = tok.EncodePair(text, "second part");
      EXPECT_EQ(pair.ids, c["pair_ids"].get<std::vector<uint32_t>>()) << text;
      EXPECT_EQ(pair.type_ids, c["pair_type_ids"].get<std::vector<uint32_t>>()) << text;
    }
  }
}

TEST(HfFixtureTest, UnicodeEdgeCasesAgree) {
  CheckEdgeCases("hf_slice.json", "edge_cases_slice.json");
}

// bert_slice.json was trained by this project; the expectations are what
// Hugging Face computes after loading it (special tokens, pairs, type ids).
TEST(HfFixtureTest, HuggingFaceRunsOurBertTokenizerJsonTheSameWay) {
  CheckEdgeCases("bert_slice.json", "edge_cases_bert.json");
}

TEST(HfFixtureTest, TrainedVocabularySharesTokensWithHuggingFaces) {
  Tokenizer hf = LoadOrDie(TestData("hf_slice.json"));
  WordPieceTrainerOptions options;  // train.js: vocab 30000, no special tokens
  NullProgressSink sink;
  auto ours = TrainFromFiles({TestData("train_slice.txt")}, options, sink);
  ASSERT_TRUE(ours.ok()) << ours.status();
  size_t hf_size = hf.vocab_size() - 1;  // the fixture appended [UNK]
  EXPECT_NEAR(static_cast<double>(ours->vocab_size()), static_cast<double>(hf_size), 10.0);
  size_t shared = 0;
  for (uint32_t id = 0; id < ours->vocab_size(); ++id) {
    std::optional<uint32_t> other = hf.TokenToId(ours->IdToToken(id));
    shared += other.has_value() && *other < hf_size;
  }
  double overlap = static_cast<double>(shared) / static_cast<double>(hf_size);
  // Hugging Face's own runs on this small slice share 99.6-99.8% with each
  // other (most late merges are ties, broken in hash order); the 99.8% bar of
  // the full corpus is FullBrownAgainstTheReference's.
  EXPECT_GE(overlap, 0.99) << shared << " of " << hf_size;
}

// The whole Brown corpus against the installed reference: skipped without
// ../shared or without scripts/hf-reference.sh having been run.
TEST(HfFixtureTest, FullBrownAgainstTheReference) {
  std::optional<std::string> shared = testing::SharedDir();
  std::optional<std::string> ref = testing::ReferenceDir();
  if (!shared || !ref) GTEST_SKIP() << "needs BERT_SHARED_DIR and scripts/hf-reference.sh";
  std::string corpus = *shared + "/corpus/brown.txt";
  testing::TempDir tmp;
  std::string out;
  ASSERT_EQ(testing::Run("cd " + *ref + " && node train.js " + tmp.File("hf.json") + " " + corpus +
                             " && node encode.js " + tmp.File("hf.json") + " " + corpus + " " +
                             tmp.File("hf.ids"),
                         &out),
            0)
      << out;
  Tokenizer hf = LoadOrDie(tmp.File("hf.json"));
  std::string text = ReadOrDie(corpus);
  std::vector<std::string_view> lines = SplitLines(text);
  EXPECT_EQ(LineAgreement(Lines(ReadOrDie(tmp.File("hf.ids"))), EncodeAll(hf, lines), lines), 1.0);

  WordPieceTrainerOptions options;
  options.threads = 2;
  NullProgressSink sink;
  auto ours = TrainFromFiles({corpus}, options, sink);
  ASSERT_TRUE(ours.ok()) << ours.status();
  ASSERT_EQ(ours->vocab_size(), hf.vocab_size());
  size_t same = 0;
  for (uint32_t id = 0; id < ours->vocab_size(); ++id)
    same += hf.TokenToId(ours->IdToToken(id)).has_value();
  double overlap = static_cast<double>(same) / static_cast<double>(hf.vocab_size());
  // Hugging Face breaks ties in hash order, so each of its runs is a random
  // draw: five of its runs shared 99.78-99.92% pairwise (mean 99.83%), and
  // ours against each of them 99.80-99.88% (mean 99.85%). A single fresh run
  // can fall below 99.8% by chance; below 99.7% would be a real divergence.
  EXPECT_GE(overlap, 0.997) << same << " of " << hf.vocab_size();
  options.threads = 1;
  auto again = TrainFromFiles({corpus}, options, sink);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ToJson(), ours->ToJson());
}

}  // namespace
}  // namespace bert::tokenizer
