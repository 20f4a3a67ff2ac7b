// bertctl tokenize and bertctl tokenizer train, run as a user would.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/tokenizer/test_util.h"
#include "tokenizer/tokenizer.h"

namespace bert::tokenizer {
namespace {

std::string Bertctl() {
  const char* bin = std::getenv("BERT_BIN_DIR");
  return std::string(bin != nullptr ? bin : "") + "/bertctl";
}

TEST(CliTest, TrainsThenTokenizesFilesAndStdin) {
  if (!std::filesystem::exists(Bertctl())) GTEST_SKIP() << "bertctl is not built";
  testing::TempDir dir;
  std::string slice = testing::TestData("train_slice.txt");
  std::string out;
  ASSERT_EQ(
      testing::Run(Bertctl() + " tokenizer train --vocab-size 700 --special-tokens bert --out " +
                       dir.File("tok") + " " + slice + " 2>&1",
                   &out),
      0)
      << out;
  auto tok = Tokenizer::Load(dir.File("tok"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->vocab_size(), 700u);
  ASSERT_TRUE(std::filesystem::exists(dir.File("tok/vocab.txt")));

  std::string input = "Hello, world!\n\nThe jury said caf\xC3\xA9.\nlast line without newline";
  testing::WriteOrDie(dir.File("in.txt"), input);
  std::string ids;
  ASSERT_EQ(
      testing::Run(
          Bertctl() + " tokenize --tokenizer " + dir.File("tok") + " " + dir.File("in.txt"), &ids),
      0);
  std::vector<std::string> rows = testing::Lines(ids);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1], "");
  std::vector<std::string> lines = testing::Lines(input);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string expected;
    for (uint32_t id : tok->Encode(lines[i], {.add_special_tokens = false}).ids) {
      expected += (expected.empty() ? "" : " ") + std::to_string(id);
    }
    EXPECT_EQ(rows[i], expected) << lines[i];
  }
  std::string tokens;
  ASSERT_EQ(testing::Run("printf 'Hello world\\n' | " + Bertctl() +
                             " tokenize --special-tokens --tokens --tokenizer " +
                             dir.File("tok/tokenizer.json"),
                         &tokens),
            0);
  EXPECT_EQ(tokens.substr(0, 6), "[CLS] ");
  EXPECT_EQ(tokens.substr(tokens.size() - 7), " [SEP]\n");
}

TEST(CliTest, BadInputExitsWithUsageOrNotFound) {
  if (!std::filesystem::exists(Bertctl())) GTEST_SKIP() << "bertctl is not built";
  testing::TempDir dir;
  std::string out;
  EXPECT_NE(testing::Run(Bertctl() + " tokenize --tokenizer " + dir.File("missing.json") +
                             " 2>&1 </dev/null",
                         &out),
            0);
  EXPECT_NE(out.find("missing.json"), std::string::npos) << out;
  EXPECT_EQ(testing::Run(Bertctl() + " tokenizer train --vocab-size 100 --out " + dir.File("x") +
                         " /nonexistent.txt > /dev/null 2>&1"),
            2);
  EXPECT_EQ(testing::Run(
                Bertctl() + " tokenizer train --vocab-size 100 --special-tokens roberta --out " +
                dir.File("x") + " " + testing::TestData("train_slice.txt") + " > /dev/null 2>&1"),
            2);
}

}  // namespace
}  // namespace bert::tokenizer
