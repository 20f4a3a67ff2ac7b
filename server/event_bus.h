// Live fan-out of job events to watchers (WatchJob). Durable history is in
// the store; the bus only carries what is committed while a watcher listens.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bert/v1/job.pb.h"

namespace bert::server {

// Thread-safe. Publishers call Publish after the events are durable, in seq order.
class EventBus {
 public:
  // One watcher's queue. Thread-safe.
  class Subscription {
   public:
    explicit Subscription(size_t capacity) : capacity_(capacity) {}
    // Waits up to `timeout` for events and returns those queued (possibly none).
    // *lagged is set when events were dropped because the watcher fell behind;
    // it should then re-read the store from its last seq.
    std::vector<v1::Event> Next(absl::Duration timeout, bool* lagged);

   private:
    friend class EventBus;
    void Push(const v1::Event& event);

    absl::Mutex mu_;
    std::deque<v1::Event> queue_ ABSL_GUARDED_BY(mu_);
    bool lagged_ ABSL_GUARDED_BY(mu_) = false;
    const size_t capacity_;
  };

  explicit EventBus(size_t per_watcher_capacity = 4096) : capacity_(per_watcher_capacity) {}

  // The subscription ends when the returned pointer is released.
  std::shared_ptr<Subscription> Subscribe(const std::string& job_id);
  void Publish(const std::vector<v1::Event>& events);

 private:
  absl::Mutex mu_;
  std::multimap<std::string, std::weak_ptr<Subscription>> subscribers_ ABSL_GUARDED_BY(mu_);
  const size_t capacity_;
};

}  // namespace bert::server
