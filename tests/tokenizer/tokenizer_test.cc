// Tokenizer behaviour on a small hand-made vocabulary: normalization,
// pre-tokenization, WordPiece, post-processing, files and errors.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tests/tokenizer/test_util.h"
#include "tokenizer/vocab_file.h"

namespace bert::tokenizer {
namespace {

using testing::TempDir;

std::vector<std::string> SmallVocab() {
  return {"[PAD]", "[UNK]", "[CLS]",  "[SEP]",  "[MASK]", "hello", "world", ",",  "!",
          "un",    "##aff", "##able", "play",   "##ing",  "a",     "##a",   "中", "文",
          "w",     "##or",  "##ld",   "runner", "-",      "up",    "cafe",  "e",  "##s",
          "Hello", "'",     "t",      "don",    ".",      "the",   "x"};
}

Tokenizer Small(bool lowercase = true) {
  auto tok = Tokenizer::FromVocab(SmallVocab(), lowercase);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return std::move(tok).value();
}

std::vector<std::string> Tokens(const Tokenizer& tok, std::string_view text, bool special = false) {
  EncodeOptions options;
  options.add_special_tokens = special;
  options.with_tokens = true;
  return tok.Encode(text, options).tokens;
}

using Strings = std::vector<std::string>;

TEST(TokenizerTest, SplitsOnWhitespaceAndPunctuationAndLowercases) {
  Tokenizer tok = Small();
  EXPECT_EQ(Tokens(tok, "Hello, World!"), (Strings{"hello", ",", "world", "!"}));
  EXPECT_EQ(Tokens(tok, "Hello, World!", true),
            (Strings{"[CLS]", "hello", ",", "world", "!", "[SEP]"}));
  EXPECT_EQ(Tokens(tok, "runner-up"), (Strings{"runner", "-", "up"}));
  EXPECT_TRUE(Tokens(tok, "").empty());
  EXPECT_TRUE(Tokens(tok, " \t\n ").empty());
  EXPECT_EQ(Tokens(tok, "", true), (Strings{"[CLS]", "[SEP]"}));
}

TEST(TokenizerTest, GreedyLongestMatchFirstWithContinuationPrefix) {
  Tokenizer tok = Small();
  EXPECT_EQ(Tokens(tok, "unaffable playing"), (Strings{"un", "##aff", "##able", "play", "##ing"}));
  EXPECT_EQ(Tokens(tok, "WORLD wor"), (Strings{"world", "w", "##or"}));
  // No piece for "z" after "play": the whole word is [UNK], not a partial.
  EXPECT_EQ(Tokens(tok, "playz hello"), (Strings{"[UNK]", "hello"}));
}

TEST(TokenizerTest, WordsOfMoreThan100CharactersAreUnknown) {
  Tokenizer tok = Small();
  std::vector<std::string> hundred = Tokens(tok, std::string(100, 'a'));
  ASSERT_EQ(hundred.size(), 100u);
  EXPECT_EQ(hundred[0], "a");
  EXPECT_EQ(hundred[99], "##a");
  EXPECT_EQ(Tokens(tok, std::string(101, 'a')), (Strings{"[UNK]"}));
  // Characters, not bytes: 100 two-byte characters are still a word.
  std::string accented;
  for (int i = 0; i < 100; ++i) accented += "\xC3\xA1";  // á -> a
  EXPECT_EQ(Tokens(tok, accented).size(), 100u);
  EXPECT_EQ(Tokens(tok, accented + "\xC3\xA1"), (Strings{"[UNK]"}));
}

TEST(TokenizerTest, StripsAccentsOnlyWhenLowercasing) {
  EXPECT_EQ(Tokens(Small(), "Café CAFÉ"), (Strings{"cafe", "cafe"}));
  EXPECT_EQ(Tokens(Small(false), "Café Hello"), (Strings{"[UNK]", "Hello"}));
  // Combining marks are removed after NFD.
  EXPECT_EQ(Tokens(Small(), "cafe\xCC\x81"), (Strings{"cafe"}));
}

TEST(TokenizerTest, IsolatesCjkIdeographs) {
  Tokenizer tok = Small();
  EXPECT_EQ(Tokens(tok, "hello中文world"), (Strings{"hello", "中", "文", "world"}));
}

TEST(TokenizerTest, DropsControlAndZeroWidthCharactersAndSplitsOnExoticSpaces) {
  Tokenizer tok = Small();
  EXPECT_EQ(Tokens(tok, "hel\xE2\x80\x8Blo"), (Strings{"hello"}));  // U+200B
  EXPECT_EQ(Tokens(tok, std::string("hel\0lo", 6)), (Strings{"hello"}));
  EXPECT_EQ(Tokens(tok, "hel\x7Flo\x01"), (Strings{"hello"}));
  EXPECT_EQ(Tokens(tok, "hello\xC2\xA0world"), (Strings{"hello", "world"}));      // NBSP
  EXPECT_EQ(Tokens(tok, "hello\xE3\x80\x80world"), (Strings{"hello", "world"}));  // U+3000
  EXPECT_EQ(Tokens(tok, "hello\xE2\x80\xA8world"), (Strings{"hello", "world"}));  // U+2028
}

TEST(TokenizerTest, InvalidUtf8IsReplacedAndDroppedNeverACrash) {
  Tokenizer tok = Small();
  EXPECT_EQ(Tokens(tok, "hel\xFFlo"), (Strings{"hello"}));
  EXPECT_EQ(Tokens(tok, "hello\xE4"), (Strings{"hello"}));          // truncated sequence
  EXPECT_EQ(Tokens(tok, "hel\xC0\xAFlo"), (Strings{"hello"}));      // overlong '/'
  EXPECT_EQ(Tokens(tok, "hel\xED\xA0\x80lo"), (Strings{"hello"}));  // surrogate
  std::mt19937 rng(34);
  std::vector<uint32_t> ids;
  for (int i = 0; i < 3000; ++i) {
    std::string text(rng() % 64, '\0');
    for (char& c : text) c = static_cast<char>(rng());
    EncodeOptions options;
    options.with_offsets = true;
    options.with_tokens = true;
    Encoding e = tok.Encode(text, options);
    for (auto [b, end] : e.offsets) {
      ASSERT_LE(b, end);
      ASSERT_LE(end, text.size());
    }
    ids.clear();
    tok.AppendIds(text, false, 0, &ids);
    EXPECT_EQ(ids, tok.Encode(text, {.add_special_tokens = false}).ids);
  }
}

TEST(TokenizerTest, OffsetsPointIntoTheOriginalText) {
  Tokenizer tok = Small();
  EncodeOptions options;
  options.add_special_tokens = true;
  options.with_offsets = true;
  Encoding e = tok.Encode("Hello, W\xC3\x96rld", options);
  using Offsets = std::vector<std::pair<size_t, size_t>>;
  // [CLS] hello , world [SEP]
  EXPECT_EQ(e.offsets, (Offsets{{0, 0}, {0, 5}, {5, 6}, {7, 13}, {0, 0}}));
  EXPECT_EQ(e.special_tokens_mask, (std::vector<uint8_t>{1, 0, 0, 0, 1}));
  EXPECT_EQ(e.attention_mask, std::vector<uint8_t>(5, 1));
  // Pieces of a word map back through the removed accent: un ##aff ##able.
  options.add_special_tokens = false;
  e = tok.Encode(
      "UN\xC3\x84"
      "FFABLE",
      options);
  EXPECT_EQ(e.offsets, (Offsets{{0, 2}, {2, 6}, {6, 10}}));
}

TEST(TokenizerTest, PairsHaveTypeIdsAndTruncateLongestFirst) {
  Tokenizer tok = Small();
  EncodeOptions options;
  options.with_tokens = true;
  Encoding e = tok.EncodePair("hello world", "play", options);
  EXPECT_EQ(e.tokens, (Strings{"[CLS]", "hello", "world", "[SEP]", "play", "[SEP]"}));
  EXPECT_EQ(e.type_ids, (std::vector<uint32_t>{0, 0, 0, 0, 1, 1}));
  options.max_length = 7;  // 4 content tokens: a keeps 3 (the longer loses first), b keeps 1
  e = tok.EncodePair("hello world hello world hello", "play", options);
  EXPECT_EQ(e.tokens, (Strings{"[CLS]", "hello", "world", "hello", "[SEP]", "play", "[SEP]"}));
  options.max_length = 8;  // 5 content tokens, both long: 2 and 3
  e = tok.EncodePair("hello hello hello hello", "world world world world", options);
  EXPECT_EQ(e.tokens,
            (Strings{"[CLS]", "hello", "hello", "[SEP]", "world", "world", "world", "[SEP]"}));
}

TEST(TokenizerTest, AppendIdsMatchesEncodeAndReportsTruncation) {
  Tokenizer tok = Small();
  std::vector<uint32_t> ids = {99};
  size_t dropped = tok.AppendIds("hello world hello", true, 4, &ids);
  EXPECT_EQ(dropped, 1u);
  const SpecialTokenIds& s = tok.special_ids();
  EXPECT_EQ(ids, (std::vector<uint32_t>{99, s.cls, 5, 6, s.sep}));
  EncodeOptions options;
  options.max_length = 4;
  EXPECT_EQ(tok.Encode("hello world hello", options).ids,
            (std::vector<uint32_t>{s.cls, 5, 6, s.sep}));
  ids.clear();
  EXPECT_EQ(tok.AppendIds("hello world", false, 0, &ids), 0u);
  EXPECT_EQ(ids, (std::vector<uint32_t>{5, 6}));
}

TEST(TokenizerTest, SpecialTokensInTheTextAreMatchedBeforeNormalization) {
  Tokenizer tok = Small();
  EXPECT_EQ(Tokens(tok, "hello [MASK] world[SEP]"), (Strings{"hello", "[MASK]", "world", "[SEP]"}));
  // Lowercase is not a special token: it is normalized and split.
  EXPECT_EQ(Tokens(tok, "[mask]"), (Strings{"[UNK]", "[UNK]", "[UNK]"}));
}

TEST(TokenizerTest, DecodeJoinsPiecesAndCleansUp) {
  Tokenizer tok = Small();
  std::vector<uint32_t> ids = tok.Encode("Hello, unaffable world!").ids;
  EXPECT_EQ(tok.Decode(ids), "hello, unaffable world!");
  EXPECT_EQ(tok.Decode(ids, false), "[CLS] hello, unaffable world! [SEP]");
  std::vector<uint32_t> unknown = {5, 12345, 6};
  EXPECT_EQ(tok.Decode(unknown), "hello world");
}

TEST(TokenizerTest, VocabularyLookups) {
  Tokenizer tok = Small();
  EXPECT_EQ(tok.vocab_size(), SmallVocab().size());
  EXPECT_EQ(tok.TokenToId("##aff"), 10u);
  EXPECT_FALSE(tok.TokenToId("nope").has_value());
  EXPECT_EQ(tok.IdToToken(5), "hello");
  EXPECT_EQ(tok.IdToToken(100000), "");
  EXPECT_EQ(tok.special_ids().pad, 0u);
  EXPECT_EQ(tok.special_ids().unk, 1u);
  EXPECT_EQ(tok.special_ids().cls, 2u);
  EXPECT_EQ(tok.special_ids().sep, 3u);
  EXPECT_EQ(tok.special_ids().mask, 4u);
  EXPECT_TRUE(tok.lowercase());
  EXPECT_EQ(tok.Fingerprint().size(), 64u);
}

TEST(TokenizerTest, SavesAndLoadsTokenizerJsonAndVocabTxt) {
  Tokenizer tok = Small();
  TempDir dir;
  ASSERT_TRUE(tok.Save(dir.path()).ok());
  auto from_dir = Tokenizer::Load(dir.path());
  ASSERT_TRUE(from_dir.ok()) << from_dir.status();
  EXPECT_EQ(from_dir->ToJson(), tok.ToJson());
  EXPECT_EQ(from_dir->Fingerprint(), tok.Fingerprint());
  auto from_vocab = Tokenizer::Load(dir.File("vocab.txt"));
  ASSERT_TRUE(from_vocab.ok()) << from_vocab.status();
  EXPECT_EQ(from_vocab->Fingerprint(), tok.Fingerprint());
  std::string text = "Hello, unaffable world! playing 中文";
  EXPECT_EQ(from_vocab->Encode(text).ids, tok.Encode(text).ids);
  EXPECT_EQ(testing::Lines(testing::ReadOrDie(dir.File("vocab.txt"))), SmallVocab());
}

TEST(TokenizerTest, VocabTxtHonoursDoLowerCaseAndCrLf) {
  TempDir dir;
  std::string vocab;
  for (const std::string& t : SmallVocab()) vocab += t + "\r\n";
  testing::WriteOrDie(dir.File("vocab.txt"), vocab);
  testing::WriteOrDie(dir.File("tokenizer_config.json"), R"({"do_lower_case": false})");
  auto tok = Tokenizer::Load(dir.path());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_FALSE(tok->lowercase());
  EXPECT_EQ(Tokens(*tok, "Hello hello"), (Strings{"Hello", "hello"}));
}

TEST(TokenizerTest, BadFilesGiveErrorsNamingTheFile) {
  TempDir dir;
  auto missing = Tokenizer::Load(dir.File("nope.json"));
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.json"), std::string::npos);
  auto empty_dir = Tokenizer::Load(dir.path());
  EXPECT_EQ(empty_dir.status().code(), absl::StatusCode::kNotFound);

  struct Case {
    std::string name, contents, message;
  } cases[] = {
      {"broken.json", "{\"model\": ", "not valid JSON"},
      {"bpe.json", R"({"model": {"type": "BPE", "vocab": {}}})", "model type BPE"},
      {"gaps.json",
       R"({"model": {"type": "WordPiece", "vocab": {"a": 0, "b": 2}}, "pre_tokenizer": {"type": "BertPreTokenizer"}})",
       "ids are not"},
      {"pre.json",
       R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Whitespace"}})",
       "pre_tokenizer"},
      {"norm.json",
       R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}, "normalizer": {"type": "NFKC"}, "pre_tokenizer": {"type": "BertPreTokenizer"}})",
       "normalizer NFKC"},
      {"vocab.txt", "hello\nworld\n", "[PAD] is not in the vocabulary"},
  };
  for (const Case& c : cases) {
    testing::WriteOrDie(dir.File(c.name), c.contents);
    auto tok = Tokenizer::Load(dir.File(c.name));
    ASSERT_FALSE(tok.ok()) << c.name;
    EXPECT_NE(tok.status().message().find(c.name), std::string::npos) << tok.status();
    EXPECT_NE(tok.status().message().find(c.message), std::string::npos) << tok.status();
  }
  EXPECT_FALSE(Tokenizer::FromVocab({"hello"}, true).ok());
}

// tokenizer.json is untrusted: a missing key, a value of the wrong type or an
// id outside the vocabulary is an error naming the file and the key, never a
// read through a missing key (which was undefined behaviour: a heap
// over-read under ASan, found by fuzz/tokenizer_json_fuzzer.cc) nor an
// exception out of the JSON library.
TEST(TokenizerTest, UntrustedTokenizerJsonIsRefusedNamingTheKey) {
  const nlohmann::json good = nlohmann::json::parse(Small().ToJson());
  struct Case {
    std::string name;
    std::function<void(nlohmann::json&)> edit;
    std::string message;
  } cases[] = {
      {"no-pair.json", [](nlohmann::json& j) { j["post_processor"].erase("pair"); },
       "post_processor.pair is not an array"},
      {"no-single.json", [](nlohmann::json& j) { j["post_processor"]["single"] = nullptr; },
       "post_processor.single is not an array"},
      {"no-ids.json",
       [](nlohmann::json& j) { j["post_processor"]["special_tokens"]["[CLS]"].erase("ids"); },
       "special token [CLS] has no ids"},
      {"specials-array.json",
       [](nlohmann::json& j) { j["post_processor"]["special_tokens"] = nlohmann::json::array(); },
       "post_processor.special_tokens is not an object"},
      {"sequence-id.json",
       [](nlohmann::json& j) { j["post_processor"]["single"][1]["Sequence"]["id"] = 7; },
       "Sequence.id is not a string"},
      {"type-id.json",
       [](nlohmann::json& j) { j["post_processor"]["single"][1]["Sequence"]["type_id"] = 1e300; },
       "type_id is not an integer"},
      {"single-id.json",
       [](nlohmann::json& j) { j["post_processor"]["special_tokens"]["[CLS]"]["ids"] = {999}; },
       "token id 999 is not in the vocabulary"},
      {"model-type.json", [](nlohmann::json& j) { j["model"]["type"] = 3; },
       "model.type is not a string"},
      {"unk.json", [](nlohmann::json& j) { j["model"]["unk_token"] = nlohmann::json::array(); },
       "model.unk_token is not a string"},
      {"normalizer-type.json", [](nlohmann::json& j) { j["normalizer"]["type"] = false; },
       "normalizer object is not supported"},
      {"pre.json", [](nlohmann::json& j) { j.erase("pre_tokenizer"); }, "pre_tokenizer null"},
      {"special.json", [](nlohmann::json& j) { j["added_tokens"][0]["special"] = "yes"; },
       "special is not a boolean"},
      {"added-id.json", [](nlohmann::json& j) { j["added_tokens"][0].erase("id"); },
       "is not a valid token id"},
      {"deep.json",
       [](nlohmann::json& j) {
         nlohmann::json deep = nlohmann::json::array();
         for (int i = 0; i < 1000; ++i) deep = nlohmann::json::array({std::move(deep)});
         j["decoder"] = std::move(deep);
       },
       "nests arrays and objects deeper than 64"},
  };
  TempDir dir;
  for (const Case& c : cases) {
    nlohmann::json j = good;
    c.edit(j);
    testing::WriteOrDie(dir.File(c.name), j.dump());
    auto tok = Tokenizer::Load(dir.File(c.name));
    ASSERT_FALSE(tok.ok()) << c.name;
    EXPECT_NE(tok.status().message().find(c.name), std::string::npos) << tok.status();
    EXPECT_NE(tok.status().message().find(c.message), std::string::npos) << tok.status();
  }
  // The good file still loads; a '[' inside a string does not count as nesting.
  nlohmann::json j = good;
  j["decoder"] = {{"prefix", std::string(200, '[')}};
  testing::WriteOrDie(dir.File("ok.json"), j.dump());
  auto tok = Tokenizer::Load(dir.File("ok.json"));
  EXPECT_TRUE(tok.ok()) << tok.status();
}

// Only regular files are read, and only up to a bound: /dev/zero (which never
// ends) and a FIFO (which blocks an open until a writer comes) are refused
// without being opened.
TEST(TokenizerTest, ReadsOnlyBoundedRegularFiles) {
  auto zero = Tokenizer::Load("/dev/zero");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("/dev/zero: not a regular file"), std::string::npos)
      << zero.status();
  TempDir dir;
  ASSERT_EQ(mkfifo(dir.File("fifo.json").c_str(), 0600), 0);
  auto fifo = Tokenizer::Load(dir.File("fifo.json"));
  ASSERT_FALSE(fifo.ok());
  EXPECT_NE(fifo.status().message().find("not a regular file"), std::string::npos) << fifo.status();
  testing::WriteOrDie(dir.File("big.txt"), std::string(100, 'a'));
  auto big = ReadTokenizerFile(dir.File("big.txt"), 99);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("over the limit of 99"), std::string::npos) << big.status();
  EXPECT_TRUE(ReadTokenizerFile(dir.File("big.txt"), 100).ok());
}

TEST(TokenizerTest, IsSafeToShareAcrossThreads) {
  Tokenizer tok = Small();
  std::vector<uint32_t> expected = tok.Encode("Hello, unaffable world! 中文 café").ids;
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (tok.Encode("Hello, unaffable world! 中文 café").ids != expected) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace bert::tokenizer
