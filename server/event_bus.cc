#include "server/event_bus.h"

namespace bert::server {

std::vector<v1::Event> EventBus::Subscription::Next(absl::Duration timeout, bool* lagged) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(
      absl::Condition(
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
  return out;
}

void EventBus::Subscription::Push(const v1::Event& event) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= capacity_) {
    queue_.clear();
    lagged_ = true;
    return;
  }
  queue_.push_back(event);
}

std::shared_ptr<EventBus::Subscription> EventBus::Subscribe(const std::string& job_id) {
  auto sub = std::make_shared<Subscription>(capacity_);
  absl::MutexLock lock(&mu_);
  subscribers_.emplace(job_id, sub);
  return sub;
}

void EventBus::Publish(const std::vector<v1::Event>& events) {
  if (events.empty()) return;
  absl::MutexLock lock(&mu_);
  for (const v1::Event& event : events) {
    auto [begin, end] = subscribers_.equal_range(event.job_id());
    for (auto it = begin; it != end;) {
      if (auto sub = it->second.lock()) {
        sub->Push(event);
        ++it;
      } else {
        it = subscribers_.erase(it);
      }
    }
  }
}

}  // namespace bert::server
