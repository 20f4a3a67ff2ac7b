// Reads the documents of one input unit: plain text (a line, or a blank-line
// separated block, per document) or JSONL (a string field per line).
//
// Documents come out "clean": valid UTF-8 without '\n' or '\r' (replaced by
// spaces, which BERT's pre-tokenizer treats like any whitespace), so a prepared
// shard can hold one document per line. Bad input (invalid UTF-8, malformed
// JSON, a missing or non-string field) is an error naming the file and line, or
// with skip_bad_lines is counted in the stats and skipped (one line each).
// Bounds: a line as LineReader's (InputUnit::max_line_bytes), a blank-line
// separated document 16 MiB, the line bound of the stages that read it back (longer is an error naming the file and line).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bert/v1/spec.pb.h"
#include "data/corpus_stats.h"
#include "data/input_plan.h"
#include "data/line_reader.h"

namespace bert::data {

// Not thread-safe; one reader per unit.
class DocumentReader {
 public:
  // `stats` (not owned, must outlive the reader) receives lines, input bytes and skips.
  static absl::StatusOr<std::unique_ptr<DocumentReader>> Open(const InputUnit& unit,
                                                              const bert::v1::SourceSpec& source,
                                                              bool skip_bad_lines,
                                                              CorpusStats* stats);

  // Sets *text to the next document and returns true, or false at the end.
  absl::StatusOr<bool> Next(std::string* text);
  // The first few skipped lines, as "file:line: reason" (for logs).
  const std::vector<std::string>& skip_examples() const { return skip_examples_; }

 private:
  enum class Mode { kLine, kBlankLine, kJsonl };
  DocumentReader(const InputUnit& unit, Mode mode, std::string text_field, bool skip_bad_lines,
                 CorpusStats* stats, std::unique_ptr<LineReader> lines);

  // Reports bad input on the current line: an error, or a counted skip.
  absl::Status BadLine(uint64_t* counter, const std::string& reason);
  absl::StatusOr<std::string> Location();

  InputUnit unit_;
  Mode mode_;
  std::string text_field_;
  bool skip_bad_lines_;
  CorpusStats* stats_;
  std::unique_ptr<LineReader> lines_;
  uint64_t reported_input_bytes_ = 0;
  std::vector<std::string> skip_examples_;
  int64_t first_line_ = -1;  // line number in the file of the unit's first line, minus 1
};

}  // namespace bert::data
