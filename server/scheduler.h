// Placement of queued stage pieces onto agents: a pure function, no I/O.
//
// Rules:
// - Order: higher priority first; FIFO (by submission order) within a priority;
//   then pipeline order of the stage and shard index. A piece that does not fit
//   now does not block later pieces that do (backfill).
// - Fit: the agent serves the piece's pool (or "*"). An agent runs at most one
//   CPU piece at a time (prepare, tokenizer, preprocess, join, export, and
//   pre-training on CPU). A pre-training rank on an accelerator needs an agent
//   of that accelerator kind with `devices` free accelerators, and uses no CPU
//   slot. Nothing is placed onto an agent without room.
// - Gang: a piece with several ranks (multi-host pre-training) is placed on
//   distinct agents all at once, or not at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"

namespace bert::server {

struct PendingTask {
  std::string job_id;
  int32_t priority = 0;
  int64_t order = 0;           // submission order; smaller is older
  v1::StageKind stage = v1::STAGE_KIND_UNSPECIFIED;
  std::vector<int32_t> shards;  // one piece, or every rank of a gang
  std::string pool;
  // CPU for data stages and CPU training; CUDA/HPU for accelerated training.
  v1::AcceleratorKind accelerator = v1::CPU;
  int32_t devices = 0;         // accelerators per host (accelerated training only)
};

struct AgentRoom {
  std::string id;
  std::vector<std::string> pools;
  v1::AcceleratorKind accelerator = v1::CPU;
  int32_t free_accelerators = 0;
  int32_t free_cpu_slots = 1;
};

struct Placement {
  size_t task = 0;                     // index into the queue given to Schedule
  std::vector<std::string> agent_ids;  // agent_ids[i] runs task.shards[i]
};

std::vector<Placement> Schedule(const std::vector<PendingTask>& queue,
                                std::vector<AgentRoom> agents);

}  // namespace bert::server
