#include "protocol/stage_names.h"

#include <array>

namespace bert::protocol {
namespace {

struct Named {
  v1::StageKind kind;
  absl::string_view name;
};

// The one spelling of each stage. Written out rather than derived from the
// enum names so that renaming an enum value cannot change the wire.
constexpr std::array<Named, 5> kStages = {{
    {v1::PREPARE, "prepare"},
    {v1::TOKENIZER, "tokenizer"},
    {v1::PREPROCESS, "preprocess"},
    {v1::PRETRAIN, "pretrain"},
    {v1::EXPORT, "export"},
}};

constexpr std::array<v1::StageKind, kStages.size()> kPipeline = {
    v1::PREPARE, v1::TOKENIZER, v1::PREPROCESS, v1::PRETRAIN, v1::EXPORT};

}  // namespace

std::string StageName(v1::StageKind kind) {
  for (const Named& s : kStages) {
    if (s.kind == kind) return std::string(s.name);
  }
  return std::string();
}

std::optional<v1::StageKind> ParseStageName(absl::string_view name) {
  for (const Named& s : kStages) {
    if (s.name == name) return s.kind;
  }
  return std::nullopt;
}

std::span<const v1::StageKind> PipelineStages() { return kPipeline; }

bool IsFanOutStage(v1::StageKind kind) { return kind == v1::PREPARE || kind == v1::PREPROCESS; }

}  // namespace bert::protocol
