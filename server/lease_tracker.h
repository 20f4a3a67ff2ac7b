// Agent leases: a lease lives for `ttl` after the agent's last renewal
// (register or heartbeat) and expires when heartbeats stop.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/clock.h"

namespace bert::server {

// Not thread-safe: the owner (JobManager) serialises calls. `clock` must outlive it.
class LeaseTracker {
 public:
  LeaseTracker(const Clock* clock, absl::Duration ttl) : clock_(clock), ttl_(ttl) {}

  // Starts or extends the lease of `id` for `ttl` (default: the tracker's);
  // returns its new deadline.
  absl::Time Renew(const std::string& id, std::optional<absl::Duration> ttl = std::nullopt);
  void Remove(const std::string& id);
  std::optional<absl::Time> Deadline(const std::string& id) const;
  bool Live(const std::string& id) const;
  // Removes and returns every lease whose deadline has passed.
  std::vector<std::string> TakeExpired();

  absl::Duration ttl() const { return ttl_; }

 private:
  const Clock* clock_;
  absl::Duration ttl_;
  std::map<std::string, absl::Time> deadlines_;
};

}  // namespace bert::server
