// Small helpers over the bert.v1 Job/Stage protos shared by the job manager's files.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "protocol/stage_names.h"

namespace bert::server {

// Final states of jobs and stages (SKIPPED counts for stages).
bool IsFinal(v1::State state);
// PRETRAIN runs as a gang of ranks that start and restart together.
bool IsGang(v1::StageKind kind);

// The stage of `kind` (jobs hold all five, in pipeline order), or null.
v1::Stage* FindStage(v1::Job* job, v1::StageKind kind);
const v1::Stage* FindStage(const v1::Job& job, v1::StageKind kind);
v1::ShardAttempt* FindShard(v1::Stage* stage, int32_t shard_index);
// The piece `shard_index` of `job`'s stage `kind`, or null when there is none.
const v1::ShardAttempt* FindPiece(const v1::Job& job, v1::StageKind kind, int32_t shard_index);
// The first stage that has not succeeded or been skipped, or null.
v1::Stage* CurrentStage(v1::Job* job);
const v1::Stage* CurrentStage(const v1::Job& job);

// The pieces of `stage` an agent could take at `now` (queued, past their
// backoff), as scheduling tasks of shard indices: a gang is one task once all
// its ranks are ready, a fan-out stage one task per ready shard.
std::vector<std::vector<int32_t>> ReadyTasks(const v1::Stage& stage, absl::Time now);

// Host pool and accelerator a stage runs on.
std::string PoolOf(const v1::JobSpec& spec, v1::StageKind kind);
v1::AcceleratorKind AcceleratorOf(const v1::JobSpec& spec, v1::StageKind kind);

std::string RefString(const v1::AssignmentRef& ref);

}  // namespace bert::server
