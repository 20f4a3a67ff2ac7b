// Readers: formats, compression, paths/globs/directories, unit planning, bad input.
#include <string>
#include <vector>

#include "data/document_reader.h"
#include "data/input_plan.h"
#include "gtest/gtest.h"
#include "tests/data/data_test_util.h"

namespace bert::data {
namespace {

using testing::JsonlSource;
using testing::TempDir;
using testing::TextSource;
using testing::WriteFile;

struct ReadResult {
  std::vector<std::string> docs;
  CorpusStats stats;
  absl::Status status;
};

// Plans `source` and reads every unit in order.
ReadResult ReadAllDocs(const bert::v1::SourceSpec& source, bool skip = false,
                       uint64_t unit_bytes = 1 << 20) {
  ReadResult r;
  bert::v1::CorpusSpec corpus;
  *corpus.add_sources() = source;
  auto units = PlanInputUnits(corpus, unit_bytes);
  if (!units.ok()) {
    r.status = units.status();
    return r;
  }
  for (const InputUnit& unit : *units) {
    auto reader = DocumentReader::Open(unit, source, skip, &r.stats);
    if (!reader.ok()) {
      r.status = reader.status();
      return r;
    }
    std::string text;
    while (true) {
      auto more = (*reader)->Next(&text);
      if (!more.ok()) {
        r.status = more.status();
        return r;
      }
      if (!*more) break;
      r.docs.push_back(text);
    }
  }
  return r;
}

TEST(ReadersTest, TextOneDocumentPerLine) {
  TempDir dir;
  WriteFile(dir.Join("a.txt"), "first line\nsecond\r\n\nlast without newline");
  ReadResult r = ReadAllDocs(TextSource(dir.Join("a.txt")));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.docs, (std::vector<std::string>{"first line", "second", "", "last without newline"}));
  EXPECT_EQ(r.stats.lines, 4u);
}

TEST(ReadersTest, TextBlankLineSeparatedDocuments) {
  TempDir dir;
  WriteFile(dir.Join("a.txt"), "\n\npara one\nstill one\n\n \t\npara two\n\n\n");
  ReadResult r = ReadAllDocs(TextSource(dir.Join("a.txt"), "blank_line"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.docs, (std::vector<std::string>{"para one still one", "para two"}));
}

TEST(ReadersTest, JsonlWithConfigurableFieldAndNewlinesBecomeSpaces) {
  TempDir dir;
  WriteFile(dir.Join("a.jsonl"),
            "{\"id\": 1, \"content\": \"line one\\nline two\\r\\nend\"}\n\n"
            "{\"content\": \"caf\\u00e9 \\u2014 ok\", \"x\": [1,2]}\n");
  ReadResult r = ReadAllDocs(JsonlSource(dir.Join("a.jsonl"), "content"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.docs,
            (std::vector<std::string>{"line one line two  end", "caf\xC3\xA9 \xE2\x80\x94 ok"}));
}

TEST(ReadersTest, GzipAndZstdReadLikePlainText) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "document number " + std::to_string(i) + "\n";
  WriteFile(dir.Join("plain.txt"), text);
  // Two gzip members back to back, as `cat a.gz b.gz` makes.
  WriteFile(dir.Join("c.txt.gz"),
            testing::GzipCompress(text.substr(0, 1000)) + testing::GzipCompress(text.substr(1000)));
  WriteFile(dir.Join("c.txt.zst"), testing::ZstdCompress(text));
  ReadResult plain = ReadAllDocs(TextSource(dir.Join("plain.txt")));
  ReadResult gz = ReadAllDocs(TextSource(dir.Join("c.txt.gz")));
  ReadResult zst = ReadAllDocs(TextSource(dir.Join("c.txt.zst")));
  ASSERT_TRUE(plain.status.ok() && gz.status.ok() && zst.status.ok()) << gz.status << zst.status;
  EXPECT_EQ(plain.docs.size(), 5000u);
  EXPECT_EQ(gz.docs, plain.docs);
  EXPECT_EQ(zst.docs, plain.docs);
  // Forced compression on an unsuffixed name.
  WriteFile(dir.Join("nosuffix"), testing::ZstdCompress("a\nb\n"));
  auto src = TextSource(dir.Join("nosuffix"));
  src.set_compression("zstd");
  EXPECT_EQ(ReadAllDocs(src).docs, (std::vector<std::string>{"a", "b"}));
}

TEST(ReadersTest, TruncatedCompressedFilesAreErrorsNamingTheFile) {
  TempDir dir;
  std::string text(200000, 'x');
  std::string gz = testing::GzipCompress(text);
  std::string zst = testing::ZstdCompress(text);
  WriteFile(dir.Join("t.txt.gz"), gz.substr(0, gz.size() / 2));
  WriteFile(dir.Join("t.txt.zst"), zst.substr(0, zst.size() / 2));
  ReadResult r1 = ReadAllDocs(TextSource(dir.Join("t.txt.gz")));
  ReadResult r2 = ReadAllDocs(TextSource(dir.Join("t.txt.zst")));
  EXPECT_EQ(r1.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r1.status.message().find("t.txt.gz"), std::string::npos) << r1.status;
  EXPECT_EQ(r2.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r2.status.message().find("t.txt.zst"), std::string::npos) << r2.status;
  WriteFile(dir.Join("garbage.gz"), "this is not gzip at all");
  EXPECT_FALSE(ReadAllDocs(TextSource(dir.Join("garbage.gz"))).status.ok());
}

TEST(ReadersTest, GlobsAndDirectoriesInSortedOrderSkippingHiddenFiles) {
  TempDir dir;
  WriteFile(dir.Join("d/b.txt"), "b\n");
  WriteFile(dir.Join("d/a.txt"), "a\n");
  WriteFile(dir.Join("d/sub/c.txt"), "c\n");
  WriteFile(dir.Join("d/.hidden"), "hidden\n");
  WriteFile(dir.Join("g1.txt"), "g1\n");
  WriteFile(dir.Join("g2.txt"), "g2\n");
  bert::v1::SourceSpec src = TextSource(dir.Join("d"));
  src.add_paths(dir.Join("g*.txt"));
  ReadResult r = ReadAllDocs(src);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.docs, (std::vector<std::string>{"a", "b", "c", "g1", "g2"}));

  ReadResult none = ReadAllDocs(TextSource(dir.Join("nothing-*.txt")));
  EXPECT_EQ(none.status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.status.message().find("nothing-*.txt"), std::string::npos);
  ReadResult missing = ReadAllDocs(TextSource(dir.Join("missing.txt")));
  EXPECT_EQ(missing.status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status.message().find("missing.txt"), std::string::npos);
}

TEST(ReadersTest, LargeFilesSplitIntoUnitsAtDocumentBoundaries) {
  TempDir dir;
  std::string lines, blocks;
  for (int i = 0; i < 3000; ++i) {
    lines += "line " + std::to_string(i) + "\n";
    blocks += "doc " + std::to_string(i) + " a\ndoc " + std::to_string(i) + " b\n\n";
  }
  WriteFile(dir.Join("lines.txt"), lines);
  WriteFile(dir.Join("blocks.txt"), blocks);
  for (auto [file, sep] : {std::pair{"lines.txt", "line"}, std::pair{"blocks.txt", "blank_line"}}) {
    auto src = TextSource(dir.Join(file), sep);
    bert::v1::CorpusSpec corpus;
    *corpus.add_sources() = src;
    auto units = PlanInputUnits(corpus, 1000);
    ASSERT_TRUE(units.ok());
    EXPECT_GT(units->size(), 10u) << file;
    ReadResult whole = ReadAllDocs(src, false, 1 << 30);
    ReadResult split = ReadAllDocs(src, false, 1000);
    ASSERT_TRUE(split.status.ok()) << split.status;
    EXPECT_EQ(whole.docs.size(), 3000u);
    EXPECT_EQ(split.docs, whole.docs) << file;
  }
}

TEST(ReadersTest, InvalidUtf8FailsWithFileAndLineOrIsSkippedAndCounted) {
  TempDir dir;
  std::string text;
  for (int i = 1; i <= 700; ++i) {
    text += (i == 650 ? std::string("bad \xC3\x28 byte") : "good line " + std::to_string(i)) + "\n";
  }
  text += "overlong \xC0\xAF\nsurrogate \xED\xA0\x80\n";
  WriteFile(dir.Join("u.txt"), text);
  // Small units, so the bad line is in a later unit: the line number is still the file's.
  ReadResult fail = ReadAllDocs(TextSource(dir.Join("u.txt")), false, 1000);
  EXPECT_EQ(fail.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(fail.status.message().find("u.txt:650: invalid UTF-8"), std::string::npos)
      << fail.status;
  ReadResult skip = ReadAllDocs(TextSource(dir.Join("u.txt")), true, 1000);
  ASSERT_TRUE(skip.status.ok()) << skip.status;
  EXPECT_EQ(skip.stats.skipped_invalid_utf8, 3u);
  EXPECT_EQ(skip.docs.size(), 699u);
}

TEST(ReadersTest, MalformedJsonAndMissingFieldsFailOrAreSkipped) {
  TempDir dir;
  WriteFile(dir.Join("j.jsonl"),
            "{\"text\": \"ok one\"}\n"
            "{\"text\": \"unterminated}\n"
            "[1, 2]\n"
            "{\"other\": \"no text\"}\n"
            "{\"text\": 42}\n"
            "{\"text\": null}\n"
            "{\"text\": \"ok two\"}\n");
  auto src = JsonlSource(dir.Join("j.jsonl"));
  ReadResult fail = ReadAllDocs(src);
  EXPECT_EQ(fail.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(fail.status.message().find("j.jsonl:2: malformed JSON"), std::string::npos)
      << fail.status;
  ReadResult skip = ReadAllDocs(src, true);
  ASSERT_TRUE(skip.status.ok()) << skip.status;
  EXPECT_EQ(skip.docs, (std::vector<std::string>{"ok one", "ok two"}));
  EXPECT_EQ(skip.stats.skipped_malformed_json, 2u);
  EXPECT_EQ(skip.stats.skipped_missing_field, 3u);

  WriteFile(dir.Join("m.jsonl"), "{\"text\": \"a\"}\n{\"body\": \"b\"}\n");
  ReadResult missing = ReadAllDocs(JsonlSource(dir.Join("m.jsonl")));
  EXPECT_NE(missing.status.message().find("m.jsonl:2: no field 'text'"), std::string::npos)
      << missing.status;
}

TEST(ReadersTest, BadSettingsAreErrors) {
  TempDir dir;
  WriteFile(dir.Join("a.txt"), "a\n");
  auto src = TextSource(dir.Join("a.txt"));
  src.set_compression("lz4");
  EXPECT_EQ(ReadAllDocs(src).status.code(), absl::StatusCode::kInvalidArgument);
  src = TextSource(dir.Join("a.txt"), "paragraph");
  EXPECT_EQ(ReadAllDocs(src).status.code(), absl::StatusCode::kInvalidArgument);
  src = TextSource(dir.Join("a.txt"));
  src.set_format("csv");
  EXPECT_EQ(ReadAllDocs(src).status.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bert::data
