#include "data/corpus_stats.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace bert::data {

void CorpusStats::Add(const CorpusStats& o) {
  input_files += o.input_files;
  input_bytes += o.input_bytes;
  lines += o.lines;
  documents += o.documents;
  bytes += o.bytes;
  empty_dropped += o.empty_dropped;
  short_dropped += o.short_dropped;
  duplicates_removed += o.duplicates_removed;
  skipped_invalid_utf8 += o.skipped_invalid_utf8;
  skipped_malformed_json += o.skipped_malformed_json;
  skipped_missing_field += o.skipped_missing_field;
}

nlohmann::json CorpusStats::ToJson() const {
  return {{"input_files", input_files},
          {"input_bytes", input_bytes},
          {"lines", lines},
          {"documents", documents},
          {"bytes", bytes},
          {"empty_dropped", empty_dropped},
          {"short_dropped", short_dropped},
          {"duplicates_removed", duplicates_removed},
          {"skipped",
           {{"invalid_utf8", skipped_invalid_utf8},
            {"malformed_json", skipped_malformed_json},
            {"missing_field", skipped_missing_field}}}};
}

absl::StatusOr<CorpusStats> CorpusStats::FromJson(const nlohmann::json& json) {
  CorpusStats s;
  auto get = [&](const nlohmann::json& obj, const char* key, uint64_t* out) -> bool {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number_unsigned()) return false;
    *out = it->get<uint64_t>();
    return true;
  };
  if (!json.is_object() || !json.contains("skipped") || !json["skipped"].is_object()) {
    return absl::DataLossError("corpus stats: not an object with 'skipped'");
  }
  const nlohmann::json& sk = json["skipped"];
  bool ok = get(json, "input_files", &s.input_files) && get(json, "input_bytes", &s.input_bytes) &&
            get(json, "lines", &s.lines) && get(json, "documents", &s.documents) &&
            get(json, "bytes", &s.bytes) && get(json, "empty_dropped", &s.empty_dropped) &&
            get(json, "short_dropped", &s.short_dropped) &&
            get(json, "duplicates_removed", &s.duplicates_removed) &&
            get(sk, "invalid_utf8", &s.skipped_invalid_utf8) &&
            get(sk, "malformed_json", &s.skipped_malformed_json) &&
            get(sk, "missing_field", &s.skipped_missing_field);
  if (!ok) return absl::DataLossError("corpus stats: a counter is missing or not a count");
  return s;
}

}  // namespace bert::data
