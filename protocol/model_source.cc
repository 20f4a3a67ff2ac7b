#include "protocol/model_source.h"

#include "protocol/artifact_ids.h"

namespace bert::protocol {

std::string WarmStartWeightsId(std::string_view job_id, std::string_view from) {
  if (from.empty()) return "";
  if (!IsJobModelReference(from)) {
    return StageArtifactId(absl::string_view(job_id.data(), job_id.size()), v1::PRETRAIN,
                           absl::string_view(kWarmStartArtifact.data(), kWarmStartArtifact.size()));
  }
  const std::optional<JobModelReference> ref = ParseJobModelReference(from);
  if (!ref) return "";
  if (ref->checkpoint_step) return CheckpointArtifactId(ref->job_id, *ref->checkpoint_step);
  return StageArtifactId(ref->job_id, v1::EXPORT, kModelArtifact);
}

}  // namespace bert::protocol
