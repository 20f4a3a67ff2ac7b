#include "server/assignment_builder.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "protocol/artifact_ids.h"
#include "protocol/output_dir.h"
#include "protocol/rendezvous.h"
#include "server/job_model.h"
#include "server/time_util.h"

namespace bert::server {
namespace {

// True for the pieces that read the corpus: PREPARE's, but not its join.
bool ReadsUploadedInputs(const v1::Stage& stage, const v1::ShardAttempt& shard) {
  return stage.kind() == v1::PREPARE &&
         (stage.shard_count() <= 1 || shard.shard_index() < stage.shard_count());
}

// The artifact of an uploaded corpus file, as the agent fetches it: the
// controller's copy, never the submitter's path.
v1::Artifact UploadedInputArtifact(const v1::InputFile& file) {
  v1::Artifact a;
  a.set_id(protocol::InputArtifactId(file.sha256()));
  a.set_name("input");
  a.set_uri(absl::StrCat("bertd://", a.id()));
  a.set_size_bytes(file.size_bytes());
  a.set_sha256(file.sha256());
  return a;
}

// The inputs of a piece: every earlier stage's outputs; a join's shards'
// outputs; a pre-training piece's resume checkpoints; a warm start's
// weights and tokenizer; a corpus-reading piece's uploaded files.
std::vector<v1::Artifact> Inputs(const v1::Job& job, const v1::Stage& stage,
                                 const v1::ShardAttempt& shard, const PlacementContext& context) {
  std::vector<v1::Artifact> inputs;
  for (const v1::Stage& earlier : job.stages()) {
    if (earlier.kind() >= stage.kind()) break;
    inputs.insert(inputs.end(), earlier.outputs().begin(), earlier.outputs().end());
  }
  if (protocol::IsFanOutStage(stage.kind()) && shard.shard_index() == stage.shard_count()) {
    for (const v1::ShardAttempt& piece : stage.shards()) {
      if (piece.shard_index() < stage.shard_count()) {
        inputs.insert(inputs.end(), piece.outputs().begin(), piece.outputs().end());
      }
    }
  }
  if (stage.kind() == v1::PRETRAIN) {
    inputs.insert(inputs.end(), context.resume_checkpoints.begin(), context.resume_checkpoints.end());
  }
  // Warm start (v1::Job.warm_start_inputs): the weights to pre-training, the
  // tokenizer that comes with another job's model to the stages that read one.
  for (const v1::Artifact& warm : job.warm_start_inputs()) {
    const bool reads = warm.produced_by() == v1::TOKENIZER
                           ? stage.kind() == v1::PREPROCESS || stage.kind() == v1::EXPORT
                           : stage.kind() == v1::PRETRAIN;
    if (reads) inputs.push_back(warm);
  }
  if (ReadsUploadedInputs(stage, shard)) {
    std::set<std::string> seen;
    for (const v1::InputFile& file : job.input_files()) {
      if (!seen.insert(file.sha256()).second) continue;
      inputs.push_back(UploadedInputArtifact(file));
    }
  }
  return inputs;
}

}  // namespace

v1::Assignment AssignmentBuilder::Build(const v1::Job& job, const v1::Stage& stage,
                                        const v1::ShardAttempt& shard,
                                        const PlacementContext& context) const {
  v1::Assignment a;
  v1::AssignmentRef* ref = a.mutable_ref();
  ref->set_job_id(job.id());
  ref->set_stage(stage.kind());
  ref->set_shard_index(shard.shard_index());
  ref->set_attempt(shard.attempt());
  a.set_shard_count(stage.shard_count());
  *a.mutable_spec() = job.spec();
  if (!protocol::ExportWritesOutputDir(job.spec().output().dir(), options_.shared_output_root)) {
    a.mutable_spec()->mutable_output()->clear_dir();
  }
  const bool shared = context.agent->shared_filesystem() && !options_.artifact_root.empty();
  for (v1::Artifact& input : Inputs(job, stage, shard, context)) {
    if (shared && absl::StartsWith(input.uri(), "bertd://")) {
      input.set_uri(absl::StrCat("file://", options_.artifact_root, "/", input.id()));
    }
    *a.add_inputs() = std::move(input);
  }
  if (context.lease_deadline) *a.mutable_lease_deadline() = ToProto(*context.lease_deadline);
  if (stage.kind() == v1::PRETRAIN) {
    const int devices = std::max(1, job.spec().resources().devices());
    const v1::AgentInfo* master = context.gang_master != nullptr ? context.gang_master : context.agent;
    std::string address = "127.0.0.1";
    if (!master->address().empty()) {
      address = master->address();
    } else if (context.gang_size > 1 && !master->hostname().empty()) {
      address = master->hostname();
    }
    v1::Rendezvous* rv = a.mutable_rendezvous();
    rv->set_master_address(address);
    rv->set_master_port(protocol::kPortChosenByMaster);
    rv->set_world_size(std::max(1, stage.shard_count()) * devices);
    rv->set_node_rank(shard.shard_index());
    rv->set_local_world_size(devices);
  }
  if (shared) a.set_artifact_root(options_.artifact_root);
  a.set_spec_dir(job.spec_dir());
  if (ReadsUploadedInputs(stage, shard)) *a.mutable_input_files() = job.input_files();
  return a;
}

}  // namespace bert::server
