#include "agent/assignment_runner.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/match.h"
#include "agent/data_roots.h"
#include "agent/failure.h"
#include "agent/stage.h"
#include "common/status_macros.h"
#include "protocol/artifact_ids.h"
#include "protocol/artifact_manifest.h"
#include "protocol/stage_names.h"

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

constexpr absl::string_view kFileScheme = "file://";

void CountArtifactBytes(const RunnerEnvironment& env, metrics::ArtifactDirection direction,
                        int64_t bytes) {
  if (env.metrics != nullptr) env.metrics->AddArtifactBytes(direction, bytes);
}

// Where the job's uploaded input `artifact` ("inputs/<sha256>") is kept on
// this host: "<work>/jobs/<job>/inputs/<sha256>".
std::string InputPathFor(const std::string& job_id, const v1::Artifact& artifact,
                         const RunnerEnvironment& env) {
  return (fs::path(env.work_dir) / "jobs" / job_id / artifact.id()).string();
}

absl::StatusOr<std::string> MaterializeInput(const std::string& job_id,
                                             const v1::Artifact& artifact,
                                             const RunnerEnvironment& env,
                                             const std::vector<std::string>& data_roots) {
  absl::string_view uri = artifact.uri();
  if (artifact.sha256().empty() && absl::StartsWith(uri, kFileScheme)) {
    // Named by the job spec itself (tokenizer.from, preprocess.from_dataset):
    // the controller recorded the path, not its contents, and never serves it.
    // It is read in place on this host, under the operator's data roots.
    const std::string path(uri.substr(kFileScheme.size()));
    BERT_RETURN_IF_ERROR(CheckUnderDataRoots(absl::StrCat("input ", artifact.id()), path, data_roots));
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      return StageFailure(v1::DATA_ERROR, absl::StrCat("input ", artifact.id(), ": ", path,
                                                       " does not exist on this host"));
    }
    return path;
  }
  if (absl::ConsumePrefix(&uri, kFileScheme) && (env.shared_fs || env.transfer == nullptr)) {
    const std::string path(uri);
    absl::Status verified = protocol::VerifyLocalArtifact(path, artifact);
    if (verified.ok()) return path;
    if (env.transfer == nullptr || verified.code() != absl::StatusCode::kNotFound) {
      return StageFailure(v1::ARTIFACT_CORRUPT, verified.message());
    }
  }
  if (env.transfer == nullptr) {
    return StageFailure(v1::ARTIFACT_CORRUPT,
                        absl::StrCat("input ", artifact.id(), " (", artifact.uri(),
                                     ") is not reachable from this host"));
  }
  // An uploaded corpus file lands in its job's own directory (it is served
  // only for the jobs that name it); other artifacts in the shared cache.
  std::string dest = (fs::path(env.work_dir) / "artifacts" / artifact.id()).string();
  if (protocol::ParseInputArtifactId(artifact.id())) dest = InputPathFor(job_id, artifact, env);
  absl::Status s = env.transfer->Download(artifact, dest, job_id);
  if (!s.ok()) {
    return StageFailure(
        s.code() == absl::StatusCode::kDataLoss ? v1::ARTIFACT_CORRUPT : v1::INTERNAL,
        absl::StrCat("input ", artifact.id(), ": ", s.message()));
  }
  CountArtifactBytes(env, metrics::ArtifactDirection::kDownload, artifact.size_bytes());
  return dest;
}

}  // namespace

std::string OutputDirFor(const v1::Assignment& assignment, const RunnerEnvironment& env) {
  const fs::path root = env.shared_fs && !assignment.artifact_root().empty()
                            ? fs::path(assignment.artifact_root())
                            : fs::path(env.work_dir) / "jobs";
  return (root / assignment.ref().job_id() / protocol::StageName(assignment.ref().stage()) /
          protocol::ShardDirName(assignment.ref().shard_index()))
      .string();
}

void PublishCheckpoint(const v1::Assignment& assignment, const RunnerEnvironment& env,
                       v1::CheckpointRecord* record) {
  record->set_job_id(assignment.ref().job_id());
  v1::Artifact* a = record->mutable_artifact();
  a->set_id(protocol::CheckpointArtifactId(assignment.ref().job_id(), a->name()));
  a->set_produced_by(v1::PRETRAIN);
  absl::string_view uri = a->uri();
  if (!absl::ConsumePrefix(&uri, kFileScheme)) return;
  const std::string path(uri);
  if (auto local = protocol::DescribeLocalArtifact(path); local.ok()) {
    a->set_size_bytes(local->size_bytes);
    a->set_sha256(local->sha256);
    a->set_is_directory(local->is_directory);
  }
  if (env.shared_fs || env.transfer == nullptr) return;
  auto uploaded = env.transfer->Upload(assignment.ref(), a->id(), a->name(), v1::PRETRAIN, path);
  if (uploaded.ok()) {
    *a = *uploaded;
    CountArtifactBytes(env, metrics::ArtifactDirection::kUpload, a->size_bytes());
  }
}

absl::StatusOr<std::vector<v1::Artifact>> RunAssignment(const v1::Assignment& assignment,
                                                        const RunnerEnvironment& env,
                                                        StageReporter& reporter) {
  const v1::AssignmentRef& ref = assignment.ref();
  BERT_ASSIGN_OR_RETURN(std::unique_ptr<Stage> stage, MakeStage(ref.stage()));

  StageContext ctx;
  ctx.ref = ref;
  ctx.shard_count = std::max(1, assignment.shard_count());
  ctx.spec = assignment.spec();
  ctx.rendezvous = assignment.rendezvous();
  ctx.rendezvous_channel = env.rendezvous;
  ctx.host_address = env.address;
  ctx.worker_path = env.worker_path;
  ctx.threads = env.threads;
  ctx.device = env.device;
  ctx.cancel_grace = env.cancel_grace;
  BERT_ASSIGN_OR_RETURN(ctx.data_roots, JobDataRoots(env.data_roots, env.spec_dir_root,
                                                     assignment.spec_dir(), env.work_dir));
  ctx.input_files.assign(assignment.input_files().begin(), assignment.input_files().end());
  ctx.output_dir = OutputDirFor(assignment, env);
  if (env.transfer != nullptr) {
    ctx.publish_artifact = [&env, ref](const std::string& name, const std::string& path) {
      const std::string id = protocol::StageArtifactId(ref.job_id(), ref.stage(), name);
      auto uploaded = env.transfer->Upload(ref, id, name, ref.stage(), path);
      if (uploaded.ok()) {
        CountArtifactBytes(env, metrics::ArtifactDirection::kUpload, uploaded->size_bytes());
      }
      return uploaded.status();
    };
  }
  std::error_code ec;
  fs::create_directories(ctx.output_dir, ec);
  if (ec) {
    return StageFailure(v1::INTERNAL,
                        absl::StrCat("create output dir ", ctx.output_dir, ": ", ec.message()));
  }
  for (const v1::Artifact& artifact : assignment.inputs()) {
    // A fan-out's parts matter only to the join of the stage that made them.
    if (protocol::IsPartsArtifactName(artifact.name()) &&
        !(ctx.is_join() && artifact.produced_by() == ref.stage())) {
      continue;
    }
    if (reporter.Cancelled()) return StageFailure(v1::CANCELLED_BY_USER, "cancelled");
    auto path = MaterializeInput(ref.job_id(), artifact, env, ctx.data_roots);
    if (!path.ok() && artifact.produced_by() == v1::PRETRAIN) {
      // An older checkpoint may have been rotated away (save_total_limit) or
      // be damaged: resume from another, never from this one.
      reporter.Log("warning", absl::StrCat("skipping checkpoint ", artifact.id(), ": ",
                                           path.status().message()));
      continue;
    }
    if (!path.ok()) return path.status();
    ctx.inputs.push_back({artifact, *std::move(path)});
  }

  reporter.Log("info", absl::StrCat("running ", v1::StageKind_Name(ref.stage()), " shard ",
                                    ref.shard_index(), "/", ctx.shard_count, " attempt ",
                                    ref.attempt(), " in ", ctx.output_dir));
  BERT_ASSIGN_OR_RETURN(std::vector<StageOutput> outputs, stage->Run(ctx, reporter));
  if (reporter.Cancelled()) return StageFailure(v1::CANCELLED_BY_USER, "cancelled");

  std::vector<v1::Artifact> published;
  for (const StageOutput& out : outputs) {
    const std::string id = protocol::OutputArtifactId(ref, ctx.shard_count, out.name);
    if (env.transfer != nullptr && !env.shared_fs) {
      auto uploaded = env.transfer->Upload(ref, id, out.name, ref.stage(), out.path);
      if (!uploaded.ok()) {
        return StageFailure(uploaded.status().code() == absl::StatusCode::kFailedPrecondition
                                ? v1::AGENT_LOST
                                : v1::INTERNAL,
                            absl::StrCat("upload ", id, ": ", uploaded.status().message()));
      }
      CountArtifactBytes(env, metrics::ArtifactDirection::kUpload, uploaded->size_bytes());
      published.push_back(*uploaded);
      continue;
    }
    auto local = protocol::DescribeLocalArtifact(out.path);
    if (!local.ok()) return StageFailure(v1::INTERNAL, local.status().message());
    v1::Artifact& a = published.emplace_back();
    a.set_id(id);
    a.set_name(out.name);
    a.set_uri(absl::StrCat(kFileScheme, fs::absolute(out.path).string()));
    a.set_size_bytes(local->size_bytes);
    a.set_sha256(local->sha256);
    a.set_is_directory(local->is_directory);
    a.set_produced_by(ref.stage());
  }
  return published;
}

}  // namespace bert::agent
