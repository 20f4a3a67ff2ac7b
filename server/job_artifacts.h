// What a job produced that the controller holds and serves to its users
// (JobService.ListJobArtifacts and PullArtifact, `bertctl pull`): the stages'
// recorded outputs (the export's model, the tokenizer, the dataset with its
// manifest, the prepared corpus), the TensorBoard event files the pretrain
// stage uploads as it trains (artifact "<job>/pretrain/tensorboard"), and on
// request its checkpoints. Only artifacts with a SHA-256 are listed: a spec's
// own tokenizer.from or preprocess.from_dataset is recorded as a path, not
// content, and is never served. A fan-out's internal parts are left out.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bert/v1/job.pb.h"
#include "storage/store.h"

namespace bert::server {

// Thread-safe (the store is).
class JobArtifacts {
 public:
  explicit JobArtifacts(const storage::Store* store) : store_(store) {}

  // `job`'s artifacts in stage order (checkpoints last, oldest first, when
  // `include_checkpoints`).
  absl::StatusOr<std::vector<v1::Artifact>> List(const v1::Job& job, bool include_checkpoints) const;

  // The record of `artifact_id` when it is an artifact of `job` that the
  // controller serves; NOT_FOUND naming the id and the job otherwise (another
  // job's artifact is not told apart from a missing one).
  absl::StatusOr<v1::Artifact> Find(const v1::Job& job, const std::string& artifact_id) const;

 private:
  const storage::Store* store_;
};

}  // namespace bert::server
