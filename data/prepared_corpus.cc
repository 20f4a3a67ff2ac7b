#include "data/prepared_corpus.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace bert::data {

absl::StatusOr<PreparedCorpus> PreparedCorpus::Load(const std::string& dir, bool verify) {
  const std::string path = dir + "/manifest.json";
  BERT_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not valid JSON"));
  }
  if (json.value("format", "") != kPreparedCorpusFormat) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a prepared corpus (format is not '",
                                                   kPreparedCorpusFormat, "')"));
  }
  if (json.value("format_version", 0) != kPreparedCorpusFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unsupported format_version (expected ",
                                                   kPreparedCorpusFormatVersion, ")"));
  }
  PreparedCorpus corpus;
  corpus.dir = dir;
  if (!json.contains("shards") || !json["shards"].is_array() || !json.contains("stats")) {
    return absl::DataLossError(absl::StrCat(path, ": missing 'shards' or 'stats'"));
  }
  for (const auto& s : json["shards"]) {
    PreparedShard shard;
    if (!s.is_object() || !s.contains("file") || !s["file"].is_string() ||
        !s.contains("documents") || !s["documents"].is_number_unsigned() || !s.contains("bytes") ||
        !s["bytes"].is_number_unsigned() || !s.contains("sha256") || !s["sha256"].is_string()) {
      return absl::DataLossError(absl::StrCat(path, ": malformed shard entry ", s.dump()));
    }
    shard.file = s["file"].get<std::string>();
    if (shard.file.find('/') != std::string::npos) {
      return absl::DataLossError(
          absl::StrCat(path, ": shard file '", shard.file, "' must be a plain file name"));
    }
    shard.documents = s["documents"].get<uint64_t>();
    shard.bytes = s["bytes"].get<uint64_t>();
    shard.sha256 = s["sha256"].get<std::string>();
    corpus.shards.push_back(std::move(shard));
  }
  auto stats = CorpusStats::FromJson(json["stats"]);
  if (!stats.ok()) return absl::DataLossError(absl::StrCat(path, ": ", stats.status().message()));
  corpus.stats = *stats;
  for (size_t i = 0; i < corpus.shards.size(); ++i) {
    const std::string shard_path = corpus.ShardPath(i);
    struct stat st;
    if (::stat(shard_path.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat(shard_path, ": listed in ", path, " but missing"));
    }
    if (static_cast<uint64_t>(st.st_size) != corpus.shards[i].bytes) {
      return absl::DataLossError(absl::StrCat(shard_path, ": size ", st.st_size, " but ", path,
                                              " says ", corpus.shards[i].bytes));
    }
    if (verify) {
      BERT_ASSIGN_OR_RETURN(std::string sha, Sha256File(shard_path));
      if (sha != corpus.shards[i].sha256) {
        return absl::DataLossError(absl::StrCat(shard_path, ": SHA-256 mismatch"));
      }
    }
  }
  return corpus;
}

absl::Status PreparedCorpus::Save() const {
  nlohmann::json list = nlohmann::json::array();
  for (const PreparedShard& s : shards) {
    list.push_back(
        {{"file", s.file}, {"documents", s.documents}, {"bytes", s.bytes}, {"sha256", s.sha256}});
  }
  nlohmann::json json = {{"format", kPreparedCorpusFormat},
                         {"format_version", kPreparedCorpusFormatVersion},
                         {"shards", std::move(list)},
                         {"stats", stats.ToJson()}};
  return WriteFileAtomically(dir + "/manifest.json", json.dump(2) + "\n");
}

}  // namespace bert::data
