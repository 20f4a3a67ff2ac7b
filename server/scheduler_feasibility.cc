#include "server/scheduler_feasibility.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "protocol/stage_names.h"

namespace bert::server {
namespace {

bool Serves(const AgentCapacity& agent, const std::string& pool) {
  return std::any_of(agent.pools.begin(), agent.pools.end(),
                     [&](const std::string& p) { return p == pool || p == "*"; });
}

bool OnCpu(const PendingTask& task) {
  return task.accelerator == v1::CPU || task.accelerator == v1::ACCELERATOR_KIND_UNSPECIFIED;
}

std::string Kind(v1::AcceleratorKind kind) { return v1::AcceleratorKind_Name(kind); }

std::string Hosts(size_t n) { return n == 1 ? "1 host" : absl::StrCat(n, " hosts"); }

}  // namespace

std::vector<AgentCapacity> LiveCapacities(const std::vector<v1::AgentInfo>& agents) {
  std::vector<AgentCapacity> out;
  for (const v1::AgentInfo& info : agents) {
    if (!info.healthy()) continue;
    AgentCapacity c;
    c.id = info.id();
    c.pools.assign(info.pools().begin(), info.pools().end());
    c.accelerator = info.resources().accelerator();
    c.accelerators = info.resources().accelerator_count();
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<std::string> WhyUnplaceable(const PendingTask& task,
                                          const std::vector<AgentCapacity>& agents) {
  const size_t hosts = std::max<size_t>(1, task.shards.size());
  const int32_t devices = std::max(1, task.devices);
  const std::string what = protocol::StageName(task.stage);

  std::vector<const AgentCapacity*> in_pool;
  std::set<std::string> pools_served;
  for (const AgentCapacity& a : agents) {
    pools_served.insert(a.pools.begin(), a.pools.end());
    if (Serves(a, task.pool)) in_pool.push_back(&a);
  }
  if (in_pool.empty()) {
    if (agents.empty()) {
      return absl::StrCat(what, " needs pool '", task.pool, "', and no live agent is registered");
    }
    return absl::StrCat(what, " needs pool '", task.pool, "', which no live agent serves (pools served: ",
                        absl::StrJoin(pools_served, ", "), ")");
  }

  size_t fit = 0;
  if (OnCpu(task)) {
    fit = in_pool.size();  // every agent has at least one CPU slot
  } else {
    std::set<std::string> kinds;
    int32_t most = 0;
    for (const AgentCapacity* a : in_pool) {
      kinds.insert(Kind(a->accelerator));
      if (a->accelerator != task.accelerator) continue;
      most = std::max(most, a->accelerators);
      if (a->accelerators >= devices) ++fit;
    }
    if (!kinds.contains(Kind(task.accelerator))) {
      return absl::StrCat(what, " needs ", Kind(task.accelerator), " accelerators in pool '", task.pool,
                          "', and its live agents have none (they have: ", absl::StrJoin(kinds, ", "),
                          ")");
    }
    if (fit == 0) {
      return absl::StrCat(what, " needs ", devices, " ", Kind(task.accelerator),
                          " accelerators on one host in pool '", task.pool,
                          "', and its live agents have at most ", most);
    }
  }
  if (fit < hosts) {
    return absl::StrCat(what, " needs ", Hosts(hosts), " in pool '", task.pool, "'",
                        OnCpu(task) ? ""
                                    : absl::StrCat(" with ", devices, " ", Kind(task.accelerator),
                                                   " accelerators each"),
                        ", and only ", fit, " live agent", fit == 1 ? "" : "s", " could take part");
  }
  return std::nullopt;
}

}  // namespace bert::server
