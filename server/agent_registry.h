// Where an agent is tracked: the agents that registered, their leases, the
// pieces each one runs (and what room that leaves it), the assignments placed
// for it but not yet acquired, and when each running piece was delivered.
//
// Every lookup is by agent or by piece, never by scanning jobs: the work of a
// heartbeat or a registration grows with that agent's pieces only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bert/v1/agent_service.pb.h"
#include "server/clock.h"
#include "server/lease_tracker.h"
#include "server/scheduler.h"

namespace bert::server {

// One piece of a stage: (job, stage, shard index).
struct PieceKey {
  std::string job_id;
  v1::StageKind stage = v1::STAGE_KIND_UNSPECIFIED;
  int32_t shard = 0;
  auto operator<=>(const PieceKey&) const = default;
};
PieceKey KeyOf(const v1::AssignmentRef& ref);

// What a running piece holds on its agent.
struct PieceUse {
  bool cpu_slot = true;     // data stages, export, CPU pre-training
  int32_t accelerators = 0;  // accelerated pre-training ranks
};

// Not thread-safe: the JobManager serialises calls under its lock. `clock`
// must outlive it.
class AgentRegistry {
 public:
  AgentRegistry(const Clock* clock, absl::Duration lease_ttl);

  // Records (or refreshes) an agent: healthy, its first registration time
  // kept, undelivered assignments kept. Renews its lease.
  const v1::AgentInfo& Register(const v1::AgentInfo& info);
  // An agent known from the store (after a controller restart), given
  // `lease` to come back when it was healthy.
  void Restore(const v1::AgentInfo& info, absl::Duration lease);
  // Known agent, or null.
  const v1::AgentInfo* Find(const std::string& agent_id) const;
  bool Live(const std::string& agent_id) const { return leases_.Live(agent_id); }
  std::optional<absl::Time> LeaseDeadline(const std::string& agent_id) const {
    return leases_.Deadline(agent_id);
  }
  // Renews the lease of a known agent; returns the new deadline.
  absl::Time Heartbeat(const std::string& agent_id, std::optional<absl::Duration> ttl = std::nullopt);
  // Agents whose lease ran out; their undelivered assignments are dropped.
  std::vector<std::string> TakeExpired();
  // Marks a known agent unhealthy; true (and its record in `info`) when it was healthy.
  bool MarkUnhealthy(const std::string& agent_id, v1::AgentInfo* info);

  // --- Pieces ---
  // `key` runs on `agent_id` (an unknown agent gets a placeholder entry).
  void Run(const PieceKey& key, const std::string& agent_id, PieceUse use);
  // `key` no longer runs anywhere; no-op when it did not.
  void Release(const PieceKey& key);
  // The agent running `key`, if any.
  std::optional<std::string> AgentOf(const PieceKey& key) const;
  // The pieces running on `agent_id` (empty for an unknown agent).
  std::set<PieceKey> PiecesOf(const std::string& agent_id) const;
  // The live agents with room for at least one more piece, with that room.
  std::vector<AgentRoom> FreeRooms() const;

  // --- Delivery ---
  void Enqueue(const std::string& agent_id, v1::Assignment assignment);
  std::optional<v1::Assignment> Dequeue(const std::string& agent_id);
  // Pieces placed for `agent_id` and not yet acquired.
  std::set<PieceKey> Undelivered(const std::string& agent_id) const;
  void MarkDelivered(const PieceKey& key, absl::Time when) { delivered_at_[key] = when; }
  void ForgetDelivery(const PieceKey& key) { delivered_at_.erase(key); }
  std::optional<absl::Time> DeliveredAt(const PieceKey& key) const;

  std::vector<v1::AgentInfo> List(const std::string& pool) const;
  size_t size() const { return agents_.size(); }
  // Known agents whose id starts with `prefix`.
  size_t CountWithPrefix(const std::string& prefix) const;

 private:
  struct Entry {
    v1::AgentInfo info;
    std::deque<v1::Assignment> outbox;  // placed, not yet acquired
    std::set<PieceKey> pieces;          // running here
    int32_t used_cpu_slots = 0;
    int32_t used_accelerators = 0;
  };
  struct Running {
    std::string agent_id;
    PieceUse use;
  };
  static int32_t CpuSlots(const v1::AgentInfo& info);

  const Clock* const clock_;
  LeaseTracker leases_;
  std::map<std::string, Entry> agents_;
  std::map<PieceKey, Running> running_;
  std::map<PieceKey, absl::Time> delivered_at_;
};

}  // namespace bert::server
