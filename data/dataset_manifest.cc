#include "data/dataset_manifest.h"

#include "absl/strings/str_cat.h"

namespace bert::data {

nlohmann::json DatasetManifest::ToJson() const {
  nlohmann::json split_json = nlohmann::json::object();
  for (const auto& [name, split] : splits) {
    nlohmann::json shards = nlohmann::json::array();
    for (const DatasetShard& s : split.shards) {
      shards.push_back({{"file", s.file}, {"blocks", s.blocks}, {"sha256", s.sha256}});
    }
    split_json[name] = {{"blocks", split.blocks}, {"shards", std::move(shards)}};
  }
  return {{"format", kPackedDatasetFormat},
          {"format_version", kPackedDatasetFormatVersion},
          {"dtype", dtype},
          {"seq_len", seq_len},
          {"vocab_size", vocab_size},
          {"tokenizer_sha256", tokenizer_sha256},
          {"special_token_ids", special_token_ids},
          {"shuffle_seed", shuffle_seed},
          {"shuffle", shuffle},
          {"split_long_documents", split_long_documents},
          {"splits", std::move(split_json)},
          {"stats",
           {{"documents", stats.documents},
            {"tokens", stats.tokens},
            {"tokens_truncated", stats.tokens_truncated},
            {"tokens_dropped_remainder", stats.tokens_dropped_remainder}}}};
}

absl::StatusOr<DatasetManifest> DatasetManifest::FromJson(const nlohmann::json& json,
                                                          const std::string& where) {
  auto bad = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat(where, ": ", what));
  };
  if (!json.is_object()) return bad("not a JSON object");
  if (json.value("format", "") != kPackedDatasetFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": not a packed dataset (format is not '", kPackedDatasetFormat, "')"));
  }
  if (json.value("format_version", 0) != kPackedDatasetFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": unsupported format_version (this ",
                                                   "build reads version ",
                                                   kPackedDatasetFormatVersion, ")"));
  }
  DatasetManifest m;
  auto uint = [&](const nlohmann::json& obj, const char* key, uint64_t* out) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number_unsigned()) return false;
    *out = it->get<uint64_t>();
    return true;
  };
  uint64_t seq_len = 0;
  if (!json.contains("dtype") || !json["dtype"].is_string()) return bad("missing 'dtype'");
  m.dtype = json["dtype"].get<std::string>();
  if (m.dtype != "uint16" && m.dtype != "uint32") return bad("dtype must be uint16 or uint32");
  if (!uint(json, "seq_len", &seq_len) || seq_len == 0 || seq_len > (1u << 20)) {
    return bad("missing or invalid 'seq_len'");
  }
  m.seq_len = static_cast<uint32_t>(seq_len);
  if (!uint(json, "vocab_size", &m.vocab_size)) return bad("missing 'vocab_size'");
  m.tokenizer_sha256 = json.value("tokenizer_sha256", "");
  uint(json, "shuffle_seed", &m.shuffle_seed);
  m.shuffle = json.value("shuffle", "");
  m.split_long_documents = json.value("split_long_documents", false);
  if (json.contains("special_token_ids") && json["special_token_ids"].is_object()) {
    for (const auto& [k, v] : json["special_token_ids"].items()) {
      if (!v.is_number_unsigned()) return bad("special_token_ids must be ids");
      m.special_token_ids[k] = v.get<uint32_t>();
    }
  }
  if (!json.contains("splits") || !json["splits"].is_object()) return bad("missing 'splits'");
  for (const auto& [name, sj] : json["splits"].items()) {
    DatasetSplit split;
    if (!sj.is_object() || !uint(sj, "blocks", &split.blocks) || !sj.contains("shards") ||
        !sj["shards"].is_array()) {
      return bad(absl::StrCat("split '", name, "' needs 'blocks' and 'shards'"));
    }
    uint64_t sum = 0;
    for (const auto& shj : sj["shards"]) {
      DatasetShard shard;
      if (!shj.is_object() || !shj.contains("file") || !shj["file"].is_string() ||
          !uint(shj, "blocks", &shard.blocks)) {
        return bad(absl::StrCat("split '", name, "': malformed shard ", shj.dump()));
      }
      shard.file = shj["file"].get<std::string>();
      if (shard.file.empty() || shard.file.find('/') != std::string::npos) {
        return bad(absl::StrCat("shard file '", shard.file, "' must be a plain file name"));
      }
      shard.sha256 = shj.value("sha256", "");
      sum += shard.blocks;
      split.shards.push_back(std::move(shard));
    }
    if (sum != split.blocks) {
      return bad(
          absl::StrCat("split '", name, "': shards hold ", sum, " blocks, not ", split.blocks));
    }
    m.splits[name] = std::move(split);
  }
  if (json.contains("stats") && json["stats"].is_object()) {
    const auto& st = json["stats"];
    uint(st, "documents", &m.stats.documents);
    uint(st, "tokens", &m.stats.tokens);
    uint(st, "tokens_truncated", &m.stats.tokens_truncated);
    uint(st, "tokens_dropped_remainder", &m.stats.tokens_dropped_remainder);
  }
  return m;
}

}  // namespace bert::data
