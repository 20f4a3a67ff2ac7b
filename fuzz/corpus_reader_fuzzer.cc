// Fuzzes the corpus readers (data::DocumentReader over data::LineReader and
// data::InputStream) as PREPARE runs them on an agent. The first byte picks
// the format (text by line, text by blank line, JSONL), the compression
// (none, gzip, zstd), skip-or-fail on bad lines, and whether the unit starts
// mid-file; the rest is the file, written to a temporary path.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <filesystem>
#include <system_error>

#include "data/corpus_stats.h"
#include "data/document_reader.h"
#include "data/input_plan.h"

namespace {

// A scratch directory for the process, removed when it exits.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    char made[] = "/tmp/bert-fuzz-corpus-XXXXXX";
    if (mkdtemp(made) == nullptr) std::abort();
    path = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const std::string& TempPath() {
  static const ScratchDir dir;
  static const std::string path = dir.path + "/input";
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string& path = TempPath();
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 1 && std::fwrite(data + 1, 1, size - 1, f) != size - 1) std::abort();
    std::fclose(f);
  }
  bert::v1::SourceSpec source;
  switch (mode % 3) {
    case 0:
      source.set_format("text");
      source.set_document_separator("line");
      break;
    case 1:
      source.set_format("text");
      source.set_document_separator("blank_line");
      break;
    default:
      source.set_format("jsonl");
      source.set_text_field((mode & 0x40) ? "body" : "text");
      break;
  }
  bert::data::InputUnit unit;
  unit.path = path;
  unit.file_bytes = size - 1;
  unit.max_line_bytes = 4096;  // small, so that the bound is exercised
  switch ((mode / 3) % 3) {
    case 0:
      unit.compression = bert::data::Compression::kNone;
      break;
    case 1:
      unit.compression = bert::data::Compression::kGzip;
      break;
    default:
      unit.compression = bert::data::Compression::kZstd;
      break;
  }
  if (unit.compression == bert::data::Compression::kNone && (mode & 0x80) && size > 2) {
    unit.start = (size - 1) / 3;  // a unit that starts mid-file, as PlanInputUnits cuts them
    unit.end = 2 * (size - 1) / 3;
  }
  bert::data::CorpusStats stats;
  auto reader =
      bert::data::DocumentReader::Open(unit, source, /*skip_bad_lines=*/(mode & 0x20) != 0, &stats);
  if (!reader.ok()) return 0;
  std::string text;
  for (int documents = 0; documents < 100000; ++documents) {
    auto more = (*reader)->Next(&text);
    if (!more.ok() || !*more) break;
  }
  return 0;
}
