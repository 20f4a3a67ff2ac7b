#include "data/document_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/utf8.h"

namespace bert::data {
namespace {

constexpr size_t kMaxSkipExamples = 10;
// A blank-line separated document gathers lines until a blank one: without a
// bound, a file with no blank line would be held in memory whole.
// A document becomes one line of a prepared shard, which later stages read
// with LineReader's default bound: a longer one could not be read back.
constexpr size_t kMaxDocumentBytes = LineReader::kDefaultMaxLineBytes;

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

// Appends `text` with '\n' and '\r' turned into spaces.
void AppendClean(std::string_view text, std::string* out) {
  size_t at = out->size();
  out->append(text.data(), text.size());
  std::replace_if(
      out->begin() + at, out->end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
}

}  // namespace

absl::StatusOr<std::unique_ptr<DocumentReader>> DocumentReader::Open(
    const InputUnit& unit, const bert::v1::SourceSpec& source, bool skip_bad_lines,
    CorpusStats* stats) {
  Mode mode;
  const std::string& format = source.format();
  if (format.empty() || format == "text") {
    const std::string& sep = source.document_separator();
    if (sep.empty() || sep == "line") {
      mode = Mode::kLine;
    } else if (sep == "blank_line") {
      mode = Mode::kBlankLine;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("corpus.sources[", unit.source,
                                                     "].document_separator: '", sep,
                                                     "' is not 'line' or 'blank_line'"));
    }
  } else if (format == "jsonl") {
    mode = Mode::kJsonl;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("corpus.sources[", unit.source, "].format: '",
                                                   format, "' is not 'text' or 'jsonl'"));
  }
  std::string field = source.text_field().empty() ? "text" : source.text_field();
  BERT_ASSIGN_OR_RETURN(auto stream,
                        OpenInputStream(unit.path, unit.compression, unit.start, unit.end, unit.roots));
  auto lines =
      std::make_unique<LineReader>(std::move(stream), size_t{1} << 20, unit.max_line_bytes);
  return std::unique_ptr<DocumentReader>(
      new DocumentReader(unit, mode, std::move(field), skip_bad_lines, stats, std::move(lines)));
}

DocumentReader::DocumentReader(const InputUnit& unit, Mode mode, std::string text_field,
                               bool skip_bad_lines, CorpusStats* stats,
                               std::unique_ptr<LineReader> lines)
    : unit_(unit),
      mode_(mode),
      text_field_(std::move(text_field)),
      skip_bad_lines_(skip_bad_lines),
      stats_(stats),
      lines_(std::move(lines)) {
  if (unit_.start == 0) first_line_ = 0;
}

absl::StatusOr<std::string> DocumentReader::Location() {
  if (first_line_ < 0) {
    BERT_ASSIGN_OR_RETURN(uint64_t before, CountNewlines(unit_.path, unit_.start));
    first_line_ = static_cast<int64_t>(before);
  }
  return absl::StrCat(unit_.path, ":", first_line_ + lines_->line_number());
}

absl::Status DocumentReader::BadLine(uint64_t* counter, const std::string& reason) {
  BERT_ASSIGN_OR_RETURN(std::string where, Location());
  std::string message = absl::StrCat(where, ": ", reason);
  if (!skip_bad_lines_) {
    return absl::InvalidArgumentError(
        absl::StrCat(message, " (corpus.on_error is 'fail'; set it to 'skip' to skip such lines)"));
  }
  ++*counter;
  if (skip_examples_.size() < kMaxSkipExamples) skip_examples_.push_back(std::move(message));
  return absl::OkStatus();
}

absl::StatusOr<bool> DocumentReader::Next(std::string* text) {
  text->clear();
  bool have_document = false;
  std::string_view line;
  while (true) {
    BERT_ASSIGN_OR_RETURN(bool more, lines_->Next(&line));
    uint64_t raw = lines_->stream().raw_bytes_read();
    stats_->input_bytes += raw - reported_input_bytes_;
    reported_input_bytes_ = raw;
    if (!more) return have_document;
    ++stats_->lines;
    if (mode_ == Mode::kBlankLine && IsBlank(line)) {
      if (have_document) return true;
      continue;
    }
    if (mode_ == Mode::kJsonl && IsBlank(line)) continue;  // blank lines carry no record
    if (!IsValidUtf8(line)) {
      BERT_RETURN_IF_ERROR(BadLine(&stats_->skipped_invalid_utf8, "invalid UTF-8"));
      continue;
    }
    switch (mode_) {
      case Mode::kLine:
        AppendClean(line, text);
        return true;
      case Mode::kBlankLine:
        if (text->size() + line.size() + 1 > kMaxDocumentBytes) {
          BERT_ASSIGN_OR_RETURN(std::string where, Location());
          return absl::InvalidArgumentError(absl::StrCat(
              where, ": a document (lines up to a blank line) is longer than ", kMaxDocumentBytes,
              " bytes; document_separator 'blank_line' needs "
              "blank lines between documents"));
        }
        if (have_document) text->push_back(' ');
        AppendClean(line, text);
        have_document = true;
        break;
      case Mode::kJsonl: {
        nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (record.is_discarded()) {
          BERT_RETURN_IF_ERROR(BadLine(&stats_->skipped_malformed_json, "malformed JSON"));
          continue;
        }
        if (!record.is_object()) {
          BERT_RETURN_IF_ERROR(
              BadLine(&stats_->skipped_malformed_json, "JSON line is not an object"));
          continue;
        }
        auto it = record.find(text_field_);
        if (it == record.end() || it->is_null()) {
          BERT_RETURN_IF_ERROR(BadLine(&stats_->skipped_missing_field,
                                       absl::StrCat("no field '", text_field_, "'")));
          continue;
        }
        if (!it->is_string()) {
          BERT_RETURN_IF_ERROR(BadLine(
              &stats_->skipped_missing_field,
              absl::StrCat("field '", text_field_, "' is a ", it->type_name(), ", not a string")));
          continue;
        }
        AppendClean(it->get_ref<const std::string&>(), text);
        return true;
      }
    }
  }
}

}  // namespace bert::data
