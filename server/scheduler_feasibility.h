// Whether the registered agents could ever run a queued task, whatever they
// run now: the scheduler's answer to "why is my job still QUEUED?". A task
// that only waits for room (agents busy) is feasible; one that needs a pool no
// live agent serves, an accelerator kind or count no agent of its pool has, or
// more such hosts than there are, is not, and the reason says what is missing.
// Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bert/v1/agent_service.pb.h"
#include "server/scheduler.h"

namespace bert::server {

// What one live agent could hold at most (its whole capacity, free or not).
struct AgentCapacity {
  std::string id;
  std::vector<std::string> pools;
  v1::AcceleratorKind accelerator = v1::CPU;
  int32_t accelerators = 0;
};

// The capacity of each live agent in `agents` (unhealthy ones are left out).
std::vector<AgentCapacity> LiveCapacities(const std::vector<v1::AgentInfo>& agents);

// Nullopt when `task.shards.size()` distinct agents of `agents` could each
// hold one of its pieces (the fit rules of scheduler.h, on whole capacity);
// otherwise what is missing, in words, naming the stage, the pool, the
// accelerator kind and count and the hosts it needs, and what there is.
std::optional<std::string> WhyUnplaceable(const PendingTask& task,
                                          const std::vector<AgentCapacity>& agents);

}  // namespace bert::server
