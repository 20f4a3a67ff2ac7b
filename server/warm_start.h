// Warm start at submit: the job spec's model.from resolved into the artifacts
// the new job reads (v1::Job.warm_start_inputs) and the architecture it
// trains (protocol/model_source.h says which artifact holds the weights).
//
//   model.from: DIR                      the directory (the spec library checked
//                                        it where paths are checked), recorded
//                                        as "<job>/pretrain/warm-start", read in
//                                        place by the agents under their data
//                                        roots, as tokenizer.from is
//   model.from: job:<id>                 that job's exported model; it must have
//                                        succeeded; its tokenizer comes with it
//   model.from: job:<id>/checkpoint-<n>  that job's recorded checkpoint (any
//                                        state); the job's tokenizer
//
// The named job must be visible to the submitter (its own, or any for an
// admin); one that is not is reported exactly as one that does not exist.
// Plain functions over lookups: no lock, no store, testable alone.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bert/v1/job.pb.h"
#include "bert/v1/spec.pb.h"

namespace bert::server {

struct Submitter {
  std::string subject;
  bool admin = false;  // sees every job
};

// A job by id (NOT_FOUND when there is none), and an artifact record by id.
using JobLookup = std::function<absl::StatusOr<v1::Job>(const std::string& job_id)>;
using ArtifactLookup =
    std::function<absl::StatusOr<std::optional<v1::Artifact>>(const std::string& artifact_id)>;

struct WarmStart {
  std::vector<v1::Artifact> inputs;  // v1::Job.warm_start_inputs
  // The artifact record the new job owns (the model.from directory), to store.
  std::optional<v1::Artifact> recorded;
  // For job:<id>: that job's model spec (its architecture).
  std::optional<v1::ModelSpec> source_model;
};

// Empty WarmStart without model.from. INVALID_ARGUMENT for a malformed
// reference, NOT_FOUND for a job that does not exist or the submitter may not
// see, FAILED_PRECONDITION for a job without that model (not succeeded, being
// deleted, no such checkpoint); every message starts "model.from 'job:…': ".
absl::StatusOr<WarmStart> ResolveWarmStart(const v1::JobSpec& spec, const std::string& job_id,
                                           const Submitter& who, const JobLookup& jobs,
                                           const ArtifactLookup& artifacts, absl::Time now);

// Whether `job` reads artifact `artifact_id` of another job as its warm
// start (an agent running `job` may then fetch it).
bool IsWarmStartInput(const v1::Job& job, const std::string& artifact_id);

// The source job's architecture into `spec->model` (its sizes, and the
// dropouts the new spec did not set: `set_in_yaml("model.hidden_dropout_prob")`
// says); nothing when the source's sizes are unknown (0). INVALID_ARGUMENT
// when the spec's blocks are longer than the model's positions.
absl::Status ApplySourceModel(const v1::ModelSpec& source,
                              const std::function<bool(const std::string& field)>& set_in_yaml,
                              v1::JobSpec* spec);

}  // namespace bert::server
