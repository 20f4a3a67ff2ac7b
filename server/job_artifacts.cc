#include "server/job_artifacts.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "protocol/artifact_ids.h"

namespace bert::server {
namespace {

// What a user may fetch: recorded with content, and not a fan-out's parts.
bool Served(const v1::Artifact& artifact) {
  return artifact.sha256().size() == 64 && !protocol::IsPartsArtifactName(artifact.name());
}

}  // namespace

absl::StatusOr<std::vector<v1::Artifact>> JobArtifacts::List(const v1::Job& job,
                                                             bool include_checkpoints) const {
  std::vector<v1::Artifact> out;
  for (const v1::Stage& stage : job.stages()) {
    for (const v1::Artifact& artifact : stage.outputs()) {
      if (Served(artifact)) out.push_back(artifact);
    }
    if (stage.kind() == v1::PRETRAIN) {
      BERT_ASSIGN_OR_RETURN(auto logs, store_->GetArtifact(protocol::StageArtifactId(
                                           job.id(), v1::PRETRAIN, protocol::kTensorBoardArtifact)));
      if (logs && Served(*logs)) out.push_back(*std::move(logs));
    }
  }
  if (include_checkpoints) {
    BERT_ASSIGN_OR_RETURN(std::vector<v1::CheckpointRecord> records,
                          store_->ListCheckpoints(job.id()));
    for (v1::CheckpointRecord& record : records) {
      if (Served(record.artifact())) out.push_back(std::move(*record.mutable_artifact()));
    }
  }
  return out;
}

absl::StatusOr<v1::Artifact> JobArtifacts::Find(const v1::Job& job,
                                                const std::string& artifact_id) const {
  const auto not_found = [&] {
    return absl::NotFoundError(
        absl::StrCat("job ", job.id(), " has no artifact '", artifact_id, "' that bertd serves"));
  };
  std::optional<protocol::ParsedArtifactId> parsed = protocol::ParseArtifactId(artifact_id);
  if (!parsed || parsed->job_id != job.id()) return not_found();
  BERT_ASSIGN_OR_RETURN(std::optional<v1::Artifact> artifact, store_->GetArtifact(artifact_id));
  if (!artifact || !Served(*artifact)) return not_found();
  return *std::move(artifact);
}

}  // namespace bert::server
