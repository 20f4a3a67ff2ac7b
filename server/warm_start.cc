#include "server/warm_start.h"

#include "absl/strings/str_cat.h"
#include "protocol/artifact_ids.h"
#include "protocol/model_source.h"
#include "server/time_util.h"

namespace bert::server {
namespace {

// The first output of `job`'s stage `kind` named `name`.
std::optional<v1::Artifact> StageOutput(const v1::Job& job, v1::StageKind kind,
                                        absl::string_view name) {
  for (const v1::Stage& stage : job.stages()) {
    if (stage.kind() != kind) continue;
    for (const v1::Artifact& a : stage.outputs()) {
      if (a.name() == name) return a;
    }
  }
  return std::nullopt;
}

// The tokenizer `job` trained with: its tokenizer stage's output, else (a
// warm-started job) the one its own warm start brought.
std::optional<v1::Artifact> TokenizerOf(const v1::Job& job) {
  if (auto trained = StageOutput(job, v1::TOKENIZER, protocol::kTokenizerArtifact)) return trained;
  for (const v1::Artifact& a : job.warm_start_inputs()) {
    if (a.produced_by() == v1::TOKENIZER) return a;
  }
  return std::nullopt;
}

absl::StatusOr<WarmStart> FromJob(const std::string& from, const Submitter& who,
                                  const JobLookup& jobs, const ArtifactLookup& artifacts) {
  const std::optional<protocol::JobModelReference> ref = protocol::ParseJobModelReference(from);
  const std::string what = absl::StrCat("model.from '", from, "': ");
  if (!ref) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, "not 'job:<id>' or 'job:<id>/checkpoint-<step>'"));
  }
  absl::StatusOr<v1::Job> source = jobs(ref->job_id);
  if (absl::IsNotFound(source.status()) ||
      (source.ok() && !who.admin && source->submitted_by() != who.subject)) {
    return absl::NotFoundError(absl::StrCat(what, "no job '", ref->job_id,
                                            "' that you may see (a job is visible to the one who "
                                            "submitted it, and to admins)"));
  }
  if (!source.ok()) return source.status();
  if (source->delete_requested()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, "job ", ref->job_id, " is being deleted"));
  }
  const std::string weights_id = protocol::WarmStartWeightsId("", from);
  absl::StatusOr<std::optional<v1::Artifact>> weights = artifacts(weights_id);
  if (!weights.ok()) return weights.status();
  WarmStart warm;
  warm.source_model = source->spec().model();
  if (!ref->checkpoint_step) {
    if (source->state() != v1::SUCCEEDED) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, "job ", ref->job_id, " has not succeeded (it is ", v1::State_Name(source->state()),
          "), so it has no exported model; start from one of its checkpoints instead: 'job:",
          ref->job_id, "/checkpoint-<step>' (bertctl checkpoints ", ref->job_id, ")"));
    }
    if (!weights->has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, "job ", ref->job_id, " has no recorded model (", weights_id, ")"));
    }
    // The exported model directory holds the tokenizer too (vocab.txt, tokenizer.json).
    v1::Artifact tokenizer = **weights;
    tokenizer.set_produced_by(v1::TOKENIZER);
    warm.inputs = {**weights, tokenizer};
    return warm;
  }
  if (!weights->has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, "job ", ref->job_id, " has no recorded checkpoint-", *ref->checkpoint_step,
        " (bertctl checkpoints ", ref->job_id, " lists those it keeps)"));
  }
  std::optional<v1::Artifact> tokenizer = TokenizerOf(*source);
  if (!tokenizer) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, "job ", ref->job_id, " has no tokenizer to go with its checkpoint"));
  }
  tokenizer->set_produced_by(v1::TOKENIZER);
  warm.inputs = {**weights, *tokenizer};
  return warm;
}

}  // namespace

absl::StatusOr<WarmStart> ResolveWarmStart(const v1::JobSpec& spec, const std::string& job_id,
                                           const Submitter& who, const JobLookup& jobs,
                                           const ArtifactLookup& artifacts, absl::Time now) {
  const std::string& from = spec.model().from();
  if (from.empty()) return WarmStart{};
  if (protocol::IsJobModelReference(from)) return FromJob(from, who, jobs, artifacts);
  // A directory: recorded by path, as tokenizer.from is (no size or hash: the
  // agents read it in place, under their data roots, and bertd never serves it).
  v1::Artifact dir;
  dir.set_id(protocol::WarmStartWeightsId(job_id, from));
  dir.set_name(std::string(protocol::kWarmStartArtifact));
  dir.set_uri("file://" + from);
  dir.set_is_directory(true);
  dir.set_produced_by(v1::PRETRAIN);
  *dir.mutable_created_at() = ToProto(now);
  WarmStart warm;
  warm.inputs = {dir};
  warm.recorded = dir;
  return warm;
}

bool IsWarmStartInput(const v1::Job& job, const std::string& artifact_id) {
  for (const v1::Artifact& input : job.warm_start_inputs()) {
    if (input.id() == artifact_id) return true;
  }
  return false;
}

absl::Status ApplySourceModel(const v1::ModelSpec& source,
                              const std::function<bool(const std::string& field)>& set_in_yaml,
                              v1::JobSpec* spec) {
  if (source.hidden_size() <= 0) return absl::OkStatus();  // the worker reads it from the files
  v1::ModelSpec* model = spec->mutable_model();
  model->set_hidden_size(source.hidden_size());
  model->set_num_hidden_layers(source.num_hidden_layers());
  model->set_num_attention_heads(source.num_attention_heads());
  model->set_intermediate_size(source.intermediate_size());
  model->set_max_position_embeddings(source.max_position_embeddings());
  model->set_type_vocab_size(source.type_vocab_size());
  if (!set_in_yaml("model.hidden_dropout_prob"))
    model->set_hidden_dropout_prob(source.hidden_dropout_prob());
  if (!set_in_yaml("model.attention_probs_dropout_prob")) {
    model->set_attention_probs_dropout_prob(source.attention_probs_dropout_prob());
  }
  if (spec->preprocess().max_seq_length() > model->max_position_embeddings()) {
    return absl::InvalidArgumentError(
        absl::StrCat("preprocess.max_seq_length: ", spec->preprocess().max_seq_length(),
                     " exceeds the max_position_embeddings (", model->max_position_embeddings(),
                     ") of model.from '", model->from(), "'"));
  }
  return absl::OkStatus();
}

}  // namespace bert::server
