// Deleting jobs (DeleteJob) and the collector that finishes what a crash
// interrupted, expires finished jobs past their retention, and removes
// uploaded corpus inputs ("inputs/<sha256>") that no job references.
//
// A delete is durable from its first step: the job record carries
// delete_requested (JobManager writes it under its lock, so no retry or
// resume races it). Then, files before records, as for checkpoint retention:
//   1. the job's files under the controller's artifact root (root/<job>/...,
//      root/.partial/<job>/..., and any file:// artifact of the job inside the
//      root) are removed and their parent directory fsync'ed;
//   2. its records go in one store batch: events, metrics, checkpoints,
//      artifacts, the idempotency key and, last of all, the job record;
//   3. the inputs it uploaded that no remaining job references: files, then
//      their artifact records.
// A crash anywhere leaves the job record with delete_requested (or nothing),
// so the next pass (bertd runs one at startup and every collect interval)
// finishes it. Files outside the root (an agent's disk, a shared root) are not
// the controller's and stay; their records go.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bert/v1/job.pb.h"
#include "bert/v1/job_service.pb.h"
#include "storage/store.h"

namespace bert::server {

struct JobCollectorOptions {
  // The controller's artifact root; empty: it holds no files.
  std::string artifact_root;
  // A finished job older than this (since finished_at) is deleted by the
  // collector; zero: kept until a user deletes it.
  absl::Duration finished_job_retention = absl::ZeroDuration();
  // An uploaded input no job references is kept this long after its upload,
  // so that the submit that follows an upload finds it.
  absl::Duration unreferenced_input_grace = absl::Hours(1);
};

// Artifact ids of uploaded corpus inputs start with this (UploadInput).
inline constexpr absl::string_view kInputArtifactPrefix = "inputs/";

// Thread-safe: deletes are serialised on an internal mutex. `store` must outlive it.
class JobCollector {
 public:
  JobCollector(storage::Store* store, JobCollectorOptions options)
      : store_(store), options_(std::move(options)) {}

  const JobCollectorOptions& options() const { return options_; }

  // Steps 1-3 for `job`, whose delete_requested is already durable. Idempotent:
  // a second call after an interruption finishes what is left.
  absl::StatusOr<v1::DeleteJobResponse> FinishDelete(const v1::Job& job) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // The stored jobs a pass deletes at `now`: those whose delete was
  // interrupted (delete_requested), and the finished ones (SUCCEEDED, FAILED,
  // CANCELLED) past finished_job_retention.
  struct Due {
    std::vector<v1::Job> interrupted;
    std::vector<v1::Job> expired;
  };
  absl::StatusOr<Due> FindDue(absl::Time now) const;

  // Removes the uploaded inputs that no stored job references and that were
  // uploaded before `now - unreferenced_input_grace`. Returns how many.
  absl::StatusOr<int> CollectInputs(absl::Time now) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Removes `path` (a file or a tree) when it exists, adding to `response`,
  // then fsyncs its parent.
  absl::Status RemoveTree(const std::string& path, v1::DeleteJobResponse* response) const;
  // Removes the inputs in `candidates` (sha256s) no stored job references,
  // recorded before `uploaded_before`. Returns how many.
  absl::StatusOr<int> RemoveUnreferencedInputs(const std::vector<std::string>& candidates,
                                               absl::Time uploaded_before,
                                               v1::DeleteJobResponse* response) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::Store* const store_;
  const JobCollectorOptions options_;
  mutable absl::Mutex mu_;
};

}  // namespace bert::server
