// Stage names on the wire and on disk: bert.v1.StageKind <-> "prepare",
// "tokenizer", "preprocess", "pretrain", "export". Artifact ids, directory
// layouts, CLI arguments and log lines all spell stages this way.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "absl/strings/string_view.h"
#include "bert/v1/job.pb.h"

namespace bert::protocol {

// "prepare" for PREPARE, ...; "" for a value that is not a pipeline stage
// (STAGE_KIND_UNSPECIFIED or out of range).
std::string StageName(v1::StageKind kind);

// The stage a name spells ("pretrain" -> PRETRAIN); nullopt for anything
// else, including "" and "stage_kind_unspecified". Case-sensitive.
std::optional<v1::StageKind> ParseStageName(absl::string_view name);

// The pipeline's stages in order: PREPARE, TOKENIZER, PREPROCESS, PRETRAIN, EXPORT.
std::span<const v1::StageKind> PipelineStages();

// Whether a stage runs as independent pieces ("shard-<i>") joined by one more
// piece, rather than as one piece or one gang: PREPARE and PREPROCESS.
bool IsFanOutStage(v1::StageKind kind);

}  // namespace bert::protocol
