// Where an assignment is built: a placed piece of a job's stage becomes the
// Assignment its agent acquires (the spec, the inputs it reads, its lease,
// the rendezvous of a gang, the artifact root of a shared filesystem).
// The gang's port is never chosen here: node 0's agent picks one free on its
// host (protocol/rendezvous.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"

namespace bert::server {

struct AssignmentBuilderOptions {
  // The controller's artifact directory; agents with a shared filesystem read it directly.
  std::string artifact_root;
  // bertd --shared-output-root: a spec's output.dir under it is written by the
  // export agent; any other output.dir is the submitter's (bertctl pulls the
  // model there) and is left out of the assignment's spec
  // (protocol/output_dir.h).
  std::string shared_output_root;
};

// What the builder needs to know beyond the job: who runs the piece, who
// leads its gang, and the checkpoints a pre-training piece may resume from.
struct PlacementContext {
  const v1::AgentInfo* agent = nullptr;        // runs the piece; required
  const v1::AgentInfo* gang_master = nullptr;  // rank 0's agent of a gang (may be `agent`)
  int gang_size = 1;                           // hosts in the gang
  std::optional<absl::Time> lease_deadline;
  std::vector<v1::Artifact> resume_checkpoints;  // newest first (PRETRAIN only)
};

// Pure: no I/O, thread-compatible.
class AssignmentBuilder {
 public:
  explicit AssignmentBuilder(AssignmentBuilderOptions options) : options_(std::move(options)) {}

  // The assignment for `shard` of `stage` in `job`, at the shard's current attempt.
  v1::Assignment Build(const v1::Job& job, const v1::Stage& stage, const v1::ShardAttempt& shard,
                       const PlacementContext& context) const;

  // Checkpoints a resuming pre-training piece is offered (the newest ones).
  static constexpr int kResumeCheckpoints = 3;

 private:
  AssignmentBuilderOptions options_;
};

}  // namespace bert::server
