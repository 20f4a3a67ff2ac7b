// training.save_total_limit in the controller's store: a job keeps its newest
// N checkpoint records (0: all), as the Hugging Face Trainer keeps its newest N
// checkpoint directories. An older checkpoint goes files first, records after:
// its files under the controller's artifact root are removed and their
// directory fsync'ed, then its checkpoint record and artifact record are
// deleted in one store batch. A crash in between leaves records past the limit
// whose files are (partly) gone; CollectGarbage, run before the controller
// serves, finishes such deletes, so no record ever outlives a restart pointing
// at missing files. Files outside the artifact root (an agent's own disk, a
// shared root) are not the controller's and are left alone; their records go.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "bert/v1/job.pb.h"
#include "storage/store.h"

namespace bert::server {

// Not thread-safe per job: the caller serialises calls for one job (JobManager
// holds its lock), so that resume choices never race a delete.
class CheckpointRetention {
 public:
  // `store` must outlive it; `artifact_root` empty: the controller holds no files.
  CheckpointRetention(storage::Store* store, std::string artifact_root)
      : store_(store), artifact_root_(std::move(artifact_root)) {}

  // Deletes the checkpoints of `job_id` older than its newest `limit` (0 or
  // less: none). Call it only once the newest record is durable. Returns how
  // many were deleted.
  absl::StatusOr<int> Enforce(const std::string& job_id, int64_t limit) const;

  // The startup pass: Enforce for every stored job, with its own
  // training.save_total_limit. Returns how many checkpoints were deleted.
  absl::StatusOr<int> CollectGarbage() const;

  // Where the controller holds `artifact`'s files: root/<id> for a bertd:// (or
  // uri-less) artifact, the path of a file:// uri inside the artifact root;
  // "" when they are not the controller's to delete.
  std::string OwnedPath(const v1::Artifact& artifact) const;

 private:
  storage::Store* const store_;
  const std::string artifact_root_;
};

}  // namespace bert::server
