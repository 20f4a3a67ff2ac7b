// Counters of corpus preparation, per input unit, per worker and for the corpus.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace bert::data {

struct CorpusStats {
  uint64_t input_files = 0;         // filled at finalize
  uint64_t input_bytes = 0;         // bytes read from the files (compressed size when compressed)
  uint64_t lines = 0;               // lines read
  uint64_t documents = 0;           // documents kept
  uint64_t bytes = 0;               // UTF-8 bytes of the documents kept (without newlines)
  uint64_t empty_dropped = 0;       // drop_empty: empty or whitespace-only texts
  uint64_t short_dropped = 0;       // min_chars: texts with fewer code points
  uint64_t duplicates_removed = 0;  // deduplicate: later copies of an earlier text
  // Bad input skipped under on_error: skip, by reason (one per line).
  uint64_t skipped_invalid_utf8 = 0;
  uint64_t skipped_malformed_json = 0;
  uint64_t skipped_missing_field = 0;  // field absent, null or not a string

  void Add(const CorpusStats& other);
  uint64_t skipped() const {
    return skipped_invalid_utf8 + skipped_malformed_json + skipped_missing_field;
  }
  nlohmann::json ToJson() const;
  static absl::StatusOr<CorpusStats> FromJson(const nlohmann::json& json);
};

}  // namespace bert::data
