#include "server/agent_registry.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "server/time_util.h"

namespace bert::server {

PieceKey KeyOf(const v1::AssignmentRef& ref) {
  return PieceKey{ref.job_id(), ref.stage(), ref.shard_index()};
}

AgentRegistry::AgentRegistry(const Clock* clock, absl::Duration lease_ttl)
    : clock_(clock), leases_(clock, lease_ttl) {}

int32_t AgentRegistry::CpuSlots(const v1::AgentInfo& info) {
  if (auto slots = info.labels().find("slots"); slots != info.labels().end()) {
    int n = 0;
    if (absl::SimpleAtoi(slots->second, &n) && n > 0) return n;
  }
  return 1;
}

const v1::AgentInfo& AgentRegistry::Register(const v1::AgentInfo& info) {
  const absl::Time now = clock_->Now();
  Entry& entry = agents_[info.id()];
  const auto registered_at =
      entry.info.has_registered_at() ? entry.info.registered_at() : ToProto(now);
  entry.info = info;
  entry.info.set_healthy(true);
  *entry.info.mutable_registered_at() = registered_at;
  *entry.info.mutable_last_heartbeat() = ToProto(now);
  entry.info.clear_assignment_ids();
  leases_.Renew(info.id());
  return entry.info;
}

void AgentRegistry::Restore(const v1::AgentInfo& info, absl::Duration lease) {
  Entry& entry = agents_[info.id()];
  entry.info = info;
  if (info.healthy()) leases_.Renew(info.id(), lease);
}

const v1::AgentInfo* AgentRegistry::Find(const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  return it == agents_.end() ? nullptr : &it->second.info;
}

absl::Time AgentRegistry::Heartbeat(const std::string& agent_id,
                                    std::optional<absl::Duration> ttl) {
  auto it = agents_.find(agent_id);
  if (it != agents_.end()) *it->second.info.mutable_last_heartbeat() = ToProto(clock_->Now());
  return leases_.Renew(agent_id, ttl);
}

std::vector<std::string> AgentRegistry::TakeExpired() {
  std::vector<std::string> expired = leases_.TakeExpired();
  for (const std::string& id : expired) {
    Entry& entry = agents_[id];
    entry.outbox.clear();
    if (entry.info.id().empty()) entry.info.set_id(id);
  }
  return expired;
}

bool AgentRegistry::MarkUnhealthy(const std::string& agent_id, v1::AgentInfo* info) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || !it->second.info.healthy()) return false;
  it->second.info.set_healthy(false);
  *info = it->second.info;
  return true;
}

void AgentRegistry::Run(const PieceKey& key, const std::string& agent_id, PieceUse use) {
  Release(key);
  Entry& entry = agents_[agent_id];
  if (entry.info.id().empty()) entry.info.set_id(agent_id);
  entry.pieces.insert(key);
  if (use.cpu_slot) ++entry.used_cpu_slots;
  entry.used_accelerators += use.accelerators;
  running_[key] = Running{agent_id, use};
}

void AgentRegistry::Release(const PieceKey& key) {
  delivered_at_.erase(key);
  auto it = running_.find(key);
  if (it == running_.end()) return;
  auto agent = agents_.find(it->second.agent_id);
  if (agent != agents_.end()) {
    agent->second.pieces.erase(key);
    if (it->second.use.cpu_slot) --agent->second.used_cpu_slots;
    agent->second.used_accelerators -= it->second.use.accelerators;
  }
  running_.erase(it);
}

std::optional<std::string> AgentRegistry::AgentOf(const PieceKey& key) const {
  auto it = running_.find(key);
  if (it == running_.end()) return std::nullopt;
  return it->second.agent_id;
}

std::set<PieceKey> AgentRegistry::PiecesOf(const std::string& agent_id) const {
  auto it = agents_.find(agent_id);
  return it == agents_.end() ? std::set<PieceKey>{} : it->second.pieces;
}

std::vector<AgentRoom> AgentRegistry::FreeRooms() const {
  std::vector<AgentRoom> rooms;
  for (const auto& [id, entry] : agents_) {
    const int32_t free_cpu = CpuSlots(entry.info) - entry.used_cpu_slots;
    const int32_t free_acc = entry.info.resources().accelerator_count() - entry.used_accelerators;
    if (free_cpu <= 0 && free_acc <= 0) continue;
    if (!leases_.Live(id)) continue;
    AgentRoom room;
    room.id = id;
    room.pools.assign(entry.info.pools().begin(), entry.info.pools().end());
    room.accelerator = entry.info.resources().accelerator();
    room.free_accelerators = free_acc;
    room.free_cpu_slots = free_cpu;
    rooms.push_back(std::move(room));
  }
  return rooms;
}

void AgentRegistry::Enqueue(const std::string& agent_id, v1::Assignment assignment) {
  agents_[agent_id].outbox.push_back(std::move(assignment));
}

std::optional<v1::Assignment> AgentRegistry::Dequeue(const std::string& agent_id) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.outbox.empty()) return std::nullopt;
  v1::Assignment a = std::move(it->second.outbox.front());
  it->second.outbox.pop_front();
  return a;
}

std::set<PieceKey> AgentRegistry::Undelivered(const std::string& agent_id) const {
  std::set<PieceKey> keys;
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return keys;
  for (const v1::Assignment& a : it->second.outbox) keys.insert(KeyOf(a.ref()));
  return keys;
}

std::optional<absl::Time> AgentRegistry::DeliveredAt(const PieceKey& key) const {
  auto it = delivered_at_.find(key);
  if (it == delivered_at_.end()) return std::nullopt;
  return it->second;
}

std::vector<v1::AgentInfo> AgentRegistry::List(const std::string& pool) const {
  std::vector<v1::AgentInfo> out;
  for (const auto& [id, entry] : agents_) {
    const auto& pools = entry.info.pools();
    if (!pool.empty() && std::find(pools.begin(), pools.end(), pool) == pools.end()) continue;
    v1::AgentInfo info = entry.info;
    info.set_healthy(leases_.Live(id));
    info.clear_assignment_ids();
    out.push_back(std::move(info));
  }
  return out;
}

size_t AgentRegistry::CountWithPrefix(const std::string& prefix) const {
  size_t n = 0;
  for (auto it = agents_.lower_bound(prefix);
       it != agents_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    ++n;
  }
  return n;
}

}  // namespace bert::server
