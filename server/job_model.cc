#include "server/job_model.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/time_util.h"

namespace bert::server {

bool IsFinal(v1::State state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED ||
         state == v1::SKIPPED;
}

bool IsGang(v1::StageKind kind) { return kind == v1::PRETRAIN; }

v1::Stage* FindStage(v1::Job* job, v1::StageKind kind) {
  for (v1::Stage& stage : *job->mutable_stages()) {
    if (stage.kind() == kind) return &stage;
  }
  return nullptr;
}

const v1::Stage* FindStage(const v1::Job& job, v1::StageKind kind) {
  for (const v1::Stage& stage : job.stages()) {
    if (stage.kind() == kind) return &stage;
  }
  return nullptr;
}

v1::ShardAttempt* FindShard(v1::Stage* stage, int32_t shard_index) {
  for (v1::ShardAttempt& shard : *stage->mutable_shards()) {
    if (shard.shard_index() == shard_index) return &shard;
  }
  return nullptr;
}

const v1::ShardAttempt* FindPiece(const v1::Job& job, v1::StageKind kind, int32_t shard_index) {
  const v1::Stage* stage = FindStage(job, kind);
  if (stage == nullptr) return nullptr;
  for (const v1::ShardAttempt& shard : stage->shards()) {
    if (shard.shard_index() == shard_index) return &shard;
  }
  return nullptr;
}

const v1::Stage* CurrentStage(const v1::Job& job) {
  for (const v1::Stage& stage : job.stages()) {
    if (stage.state() != v1::SUCCEEDED && stage.state() != v1::SKIPPED) return &stage;
  }
  return nullptr;
}

v1::Stage* CurrentStage(v1::Job* job) { return const_cast<v1::Stage*>(CurrentStage(*job)); }

std::vector<std::vector<int32_t>> ReadyTasks(const v1::Stage& stage, absl::Time now) {
  auto ready = [now](const v1::ShardAttempt& s) {
    return s.state() == v1::QUEUED && FromProto(s.not_before()) <= now;
  };
  std::vector<std::vector<int32_t>> tasks;
  if (IsGang(stage.kind())) {
    if (stage.shards().empty() || !std::all_of(stage.shards().begin(), stage.shards().end(), ready)) {
      return tasks;
    }
    std::vector<int32_t>& gang = tasks.emplace_back();
    for (const v1::ShardAttempt& s : stage.shards()) gang.push_back(s.shard_index());
    return tasks;
  }
  for (const v1::ShardAttempt& s : stage.shards()) {
    if (ready(s)) tasks.push_back({s.shard_index()});
  }
  return tasks;
}

std::string PoolOf(const v1::JobSpec& spec, v1::StageKind kind) {
  if (kind == v1::PRETRAIN || kind == v1::EXPORT) {
    return spec.resources().train_pool().empty() ? "train" : spec.resources().train_pool();
  }
  return spec.resources().prep_pool().empty() ? "cpu" : spec.resources().prep_pool();
}

v1::AcceleratorKind AcceleratorOf(const v1::JobSpec& spec, v1::StageKind kind) {
  if (kind != v1::PRETRAIN) return v1::CPU;
  const std::string acc = absl::AsciiStrToLower(spec.resources().accelerator());
  if (acc == "cuda") return v1::CUDA;
  if (acc == "hpu") return v1::HPU;
  return v1::CPU;
}

std::string RefString(const v1::AssignmentRef& ref) {
  return absl::StrCat(ref.job_id(), "/", protocol::StageName(ref.stage()), "/", ref.shard_index(),
                      " attempt ", ref.attempt());
}

}  // namespace bert::server
