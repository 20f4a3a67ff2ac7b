#include "server/event_bus.h"

#include "absl/strings/str_cat.h"

namespace bert::server {

std::vector<v1::Event> EventBus::Subscription::Next(absl::Duration timeout, bool* lagged) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](Subscription* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                             return !s->queue_.empty() || s->lagged_;
                           },
                           this),
                       timeout);
  *lagged = lagged_;
  lagged_ = false;
  std::vector<v1::Event> out(std::make_move_iterator(queue_.begin()),
                             std::make_move_iterator(queue_.end()));
  queue_.clear();
  queued_bytes_ = 0;
  return out;
}

void EventBus::Subscription::Push(const v1::Event& event) {
  const size_t bytes = event.ByteSizeLong();
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= capacity_ || queued_bytes_ + bytes > capacity_bytes_) {
    queue_.clear();
    queued_bytes_ = 0;
    lagged_ = true;
    return;
  }
  queue_.push_back(event);
  queued_bytes_ += bytes;
}

absl::StatusOr<std::shared_ptr<EventBus::Subscription>> EventBus::SubscribeFor(
    const std::string& owner, const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  if (subscribers_.size() >= options_.max_watchers) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many watches: the controller serves at most ", options_.max_watchers, " at once"));
  }
  const auto owned = per_owner_.find(owner);
  if (owned != per_owner_.end() && owned->second >= options_.max_watchers_per_owner) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many watches: at most ", options_.max_watchers_per_owner, " at once per caller"));
  }
  ++per_owner_[owner];
  return AddLocked(owner, true, job_id);
}

std::shared_ptr<EventBus::Subscription> EventBus::Subscribe(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  return AddLocked("", false, job_id);
}

std::shared_ptr<EventBus::Subscription> EventBus::AddLocked(const std::string& owner, bool counted,
                                                            const std::string& job_id) {
  // The deleter takes the entry out of the bus, so a subscription to a job
  // that never publishes does not stay behind.
  Subscription* raw = new Subscription(options_.per_watcher_capacity, options_.per_watcher_bytes);
  std::shared_ptr<Subscription> sub(raw, [this, job_id](Subscription* s) {
    Unsubscribe(job_id, s);
    delete s;
  });
  subscribers_.emplace(job_id, Entry{sub, raw, owner, counted});
  return sub;
}

void EventBus::Unsubscribe(const std::string& job_id, const Subscription* subscription) {
  absl::MutexLock lock(&mu_);
  auto [begin, end] = subscribers_.equal_range(job_id);
  for (auto it = begin; it != end; ++it) {
    if (it->second.raw == subscription) {
      if (it->second.counted) {
        auto owner = per_owner_.find(it->second.owner);
        if (owner != per_owner_.end() && --owner->second == 0) per_owner_.erase(owner);
      }
      subscribers_.erase(it);
      return;
    }
  }
}

void EventBus::Publish(const std::vector<v1::Event>& events) {
  if (events.empty()) return;
  // Declared before the lock so that a subscription whose last reference is
  // dropped here is released (and unsubscribes) after the lock is.
  std::vector<std::shared_ptr<Subscription>> held;
  absl::MutexLock lock(&mu_);
  // Events come in runs of one job; each run is pushed to that job's watchers.
  for (size_t begin = 0; begin < events.size();) {
    const std::string& job_id = events[begin].job_id();
    size_t end = begin;
    while (end < events.size() && events[end].job_id() == job_id) ++end;
    auto [first, last] = subscribers_.equal_range(job_id);
    for (auto it = first; it != last; ++it) {
      if (auto sub = it->second.subscription.lock()) {
        for (size_t i = begin; i < end; ++i) sub->Push(events[i]);
        held.push_back(std::move(sub));
      }
    }
    begin = end;
  }
}

size_t EventBus::SubscriberCount() const {
  absl::MutexLock lock(&mu_);
  return subscribers_.size();
}

size_t EventBus::SubscriberCount(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  return subscribers_.count(job_id);
}

}  // namespace bert::server
