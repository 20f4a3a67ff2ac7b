#include "server/lease_tracker.h"

namespace bert::server {

absl::Time LeaseTracker::Renew(const std::string& id, std::optional<absl::Duration> ttl) {
  const absl::Time deadline = clock_->Now() + ttl.value_or(ttl_);
  deadlines_[id] = deadline;
  return deadline;
}

void LeaseTracker::Remove(const std::string& id) { deadlines_.erase(id); }

std::optional<absl::Time> LeaseTracker::Deadline(const std::string& id) const {
  auto it = deadlines_.find(id);
  if (it == deadlines_.end()) return std::nullopt;
  return it->second;
}

bool LeaseTracker::Live(const std::string& id) const {
  auto it = deadlines_.find(id);
  return it != deadlines_.end() && it->second > clock_->Now();
}

std::vector<std::string> LeaseTracker::TakeExpired() {
  const absl::Time now = clock_->Now();
  std::vector<std::string> expired;
  for (auto it = deadlines_.begin(); it != deadlines_.end();) {
    if (it->second <= now) {
      expired.push_back(it->first);
      it = deadlines_.erase(it);
    } else {
      ++it;
    }
  }
  return expired;
}

}  // namespace bert::server
