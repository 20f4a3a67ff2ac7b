#include "protocol/artifact_ids.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "protocol/checkpoint_names.h"
#include "protocol/stage_names.h"

namespace bert::protocol {
namespace {

constexpr absl::string_view kPartsPrefix = "parts-";
constexpr absl::string_view kShardPrefix = "shard-";
constexpr absl::string_view kInputsPrefix = "inputs/";

}  // namespace

std::string PartsArtifactName(int shard_index) {
  return absl::StrFormat("%s%05d", kPartsPrefix, shard_index);
}

bool IsPartsArtifactName(absl::string_view name) { return absl::StartsWith(name, kPartsPrefix); }

std::string ShardDirName(int shard_index) { return absl::StrCat(kShardPrefix, shard_index); }

std::string StageArtifactId(absl::string_view job_id, v1::StageKind stage, absl::string_view name) {
  return absl::StrCat(job_id, "/", StageName(stage), "/", name);
}

std::string PieceArtifactId(absl::string_view job_id, v1::StageKind stage, int shard_index,
                            absl::string_view name) {
  return absl::StrCat(job_id, "/", StageName(stage), "/", ShardDirName(shard_index), "/", name);
}

std::string OutputArtifactId(const v1::AssignmentRef& ref, int shard_count,
                             absl::string_view name) {
  const bool piece =
      IsFanOutStage(ref.stage()) && shard_count > 1 && ref.shard_index() < shard_count;
  return piece ? PieceArtifactId(ref.job_id(), ref.stage(), ref.shard_index(), name)
               : StageArtifactId(ref.job_id(), ref.stage(), name);
}

std::string CheckpointArtifactName(int64_t step) { return CheckpointDirName(step); }

std::string CheckpointArtifactId(absl::string_view job_id, absl::string_view checkpoint_name) {
  return StageArtifactId(job_id, v1::PRETRAIN, checkpoint_name);
}

std::string CheckpointArtifactId(absl::string_view job_id, int64_t step) {
  return CheckpointArtifactId(job_id, CheckpointArtifactName(step));
}

std::optional<ParsedArtifactId> ParseArtifactId(absl::string_view id) {
  const std::vector<absl::string_view> parts = absl::StrSplit(id, '/');
  if (parts.size() != 3 && parts.size() != 4) return std::nullopt;
  ParsedArtifactId out;
  out.job_id = std::string(parts.front());
  out.name = std::string(parts.back());
  if (out.job_id.empty() || out.name.empty()) return std::nullopt;
  const std::optional<v1::StageKind> stage = ParseStageName(parts[1]);
  if (!stage) return std::nullopt;
  out.stage = *stage;
  if (parts.size() == 4) {
    absl::string_view shard = parts[2];
    if (!absl::ConsumePrefix(&shard, kShardPrefix) || shard.empty() ||
        !absl::SimpleAtoi(shard, &out.shard_index) || out.shard_index < 0 ||
        ShardDirName(out.shard_index) != parts[2]) {
      return std::nullopt;
    }
  }
  return out;
}

bool IsSha256Hex(absl::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string InputArtifactId(absl::string_view sha256) { return absl::StrCat(kInputsPrefix, sha256); }

std::optional<std::string> ParseInputArtifactId(absl::string_view id) {
  if (!absl::ConsumePrefix(&id, kInputsPrefix) || !IsSha256Hex(id)) return std::nullopt;
  return std::string(id);
}

}  // namespace bert::protocol
