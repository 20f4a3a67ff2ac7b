// Artifact ids and names. An artifact id is a '/'-separated relative path
// (the controller stores artifact <id> at <artifact root>/<id>):
//   "<job>/<stage>/<name>"              a stage's output (stage as in stage_names.h)
//   "<job>/<stage>/shard-<i>/<name>"    the output of piece i of a fanned-out stage
//   "<job>/pretrain/<checkpoint name>"  a checkpoint ("checkpoint-<step>")
// An agent writes piece i of a stage under "<root>/<job>/<stage>/shard-<i>/"
// (ShardDirName): the same "shard-<i>" part.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"

namespace bert::protocol {

// The well-known artifact names stages produce and look for.
inline constexpr absl::string_view kCorpusArtifact = "corpus";        // PREPARE
inline constexpr absl::string_view kTokenizerArtifact = "tokenizer";  // TOKENIZER
inline constexpr absl::string_view kDatasetArtifact = "dataset";      // PREPROCESS
inline constexpr absl::string_view kModelArtifact = "model";          // EXPORT
// PRETRAIN's TensorBoard event directory, uploaded while it trains
// ("<job>/pretrain/tensorboard"; agent/tensorboard_publisher.h).
inline constexpr absl::string_view kTensorBoardArtifact = "tensorboard";

// "parts-00003": what piece 3 of a fanned-out stage hands to the join.
std::string PartsArtifactName(int shard_index);
bool IsPartsArtifactName(absl::string_view name);

// "shard-3": the id part and directory name of piece 3.
std::string ShardDirName(int shard_index);

// "<job>/<stage>/<name>".
std::string StageArtifactId(absl::string_view job_id, v1::StageKind stage, absl::string_view name);

// "<job>/<stage>/shard-<i>/<name>".
std::string PieceArtifactId(absl::string_view job_id, v1::StageKind stage, int shard_index,
                            absl::string_view name);

// The id of output `name` of the piece `ref` of a stage run as `shard_count`
// pieces: PieceArtifactId for the fanned-out pieces of a fan-out stage
// (IsFanOutStage, shard_count > 1, shard_index < shard_count), else
// StageArtifactId (one piece, the join, every rank of a gang).
std::string OutputArtifactId(const v1::AssignmentRef& ref, int shard_count, absl::string_view name);

// "checkpoint-<step>": a checkpoint artifact is named like the directory the
// worker writes it to (CheckpointDirName, protocol/checkpoint_names.h).
std::string CheckpointArtifactName(int64_t step);

// "<job>/pretrain/<checkpoint_name>".
std::string CheckpointArtifactId(absl::string_view job_id, absl::string_view checkpoint_name);
// "<job>/pretrain/checkpoint-<step>".
std::string CheckpointArtifactId(absl::string_view job_id, int64_t step);

// An artifact id taken apart; shard_index is -1 without a "shard-<i>" part.
struct ParsedArtifactId {
  std::string job_id;
  v1::StageKind stage = v1::STAGE_KIND_UNSPECIFIED;
  int shard_index = -1;
  std::string name;
};

// nullopt unless `id` has one of the two forms above with a known stage and
// non-empty job and name (neither containing '/').
std::optional<ParsedArtifactId> ParseArtifactId(absl::string_view id);

// Corpus files uploaded from a submitting machine (JobService.UploadInput) are
// content-addressed and belong to no one job: "inputs/<sha256>", the SHA-256
// of the file's bytes in 64 lowercase hex digits. ("inputs" is no job id:
// job ids start with "j-".)
std::string InputArtifactId(absl::string_view sha256);
// The sha256 of an input artifact id; nullopt for any other id.
std::optional<std::string> ParseInputArtifactId(absl::string_view id);
// True for 64 lowercase hex digits.
bool IsSha256Hex(absl::string_view text);

}  // namespace bert::protocol
