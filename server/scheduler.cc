#include "server/scheduler.h"

#include <algorithm>
#include <numeric>
#include <set>

namespace bert::server {
namespace {

bool ServesPool(const AgentRoom& agent, const std::string& pool) {
  for (const std::string& p : agent.pools) {
    if (p == pool || p == "*") return true;
  }
  return false;
}

bool Fits(const PendingTask& task, const AgentRoom& agent) {
  if (!ServesPool(agent, task.pool)) return false;
  if (task.accelerator == v1::CPU || task.accelerator == v1::ACCELERATOR_KIND_UNSPECIFIED) {
    return agent.free_cpu_slots >= 1;
  }
  return agent.accelerator == task.accelerator &&
         agent.free_accelerators >= std::max(1, task.devices);
}

void Take(const PendingTask& task, AgentRoom* agent) {
  if (task.accelerator == v1::CPU || task.accelerator == v1::ACCELERATOR_KIND_UNSPECIFIED) {
    --agent->free_cpu_slots;
  } else {
    agent->free_accelerators -= std::max(1, task.devices);
  }
}

}  // namespace

std::vector<Placement> Schedule(const std::vector<PendingTask>& queue,
                                std::vector<AgentRoom> agents) {
  std::vector<size_t> order(queue.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const PendingTask& x = queue[a];
    const PendingTask& y = queue[b];
    if (x.priority != y.priority) return x.priority > y.priority;
    if (x.order != y.order) return x.order < y.order;
    if (x.stage != y.stage) return x.stage < y.stage;
    const int32_t xs = x.shards.empty() ? 0 : x.shards.front();
    const int32_t ys = y.shards.empty() ? 0 : y.shards.front();
    return xs < ys;
  });
  std::sort(agents.begin(), agents.end(),
            [](const AgentRoom& a, const AgentRoom& b) { return a.id < b.id; });

  std::vector<Placement> placements;
  for (size_t index : order) {
    const PendingTask& task = queue[index];
    if (task.shards.empty()) continue;
    std::vector<size_t> chosen;
    for (size_t a = 0; a < agents.size() && chosen.size() < task.shards.size(); ++a) {
      if (Fits(task, agents[a])) chosen.push_back(a);
    }
    if (chosen.size() < task.shards.size()) continue;  // a gang starts whole or not at all
    Placement placement{index, {}};
    for (size_t a : chosen) {
      Take(task, &agents[a]);
      placement.agent_ids.push_back(agents[a].id);
    }
    placements.push_back(std::move(placement));
  }
  return placements;
}

}  // namespace bert::server
