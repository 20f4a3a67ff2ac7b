// Live fan-out of job events to watchers (WatchJob). Durable history is in
// the store; the bus only carries what is committed while a watcher listens.
//
// Costs are bounded: each watcher's queue holds at most `per_watcher_capacity`
// events and `per_watcher_bytes` bytes (past either the queue is dropped and
// the watcher told to re-read the store), and the bus holds at most `max_watchers` subscriptions in
// all and `max_watchers_per_owner` per caller; a subscription leaves the bus when its last
// reference is released, whatever the job.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bert/v1/job.pb.h"

namespace bert::server {

struct EventBusOptions {
  size_t per_watcher_capacity = 4096;  // events queued per watcher before it lags
  size_t per_watcher_bytes = 1 << 20;  // encoded bytes queued per watcher before it lags
  size_t max_watchers = 1024;          // subscriptions in all
  size_t max_watchers_per_owner = 64;  // subscriptions of one caller (token subject)
};

// Thread-safe. Publishers call Publish after the events are durable, in seq order.
class EventBus {
 public:
  // One watcher's queue. Thread-safe.
  class Subscription {
   public:
    Subscription(size_t capacity, size_t capacity_bytes)
        : capacity_(capacity), capacity_bytes_(capacity_bytes) {}
    // Waits up to `timeout` for events and returns those queued (possibly none).
    // *lagged is set when events were dropped because the watcher fell behind;
    // it should then re-read the store from its last seq.
    std::vector<v1::Event> Next(absl::Duration timeout, bool* lagged);

   private:
    friend class EventBus;
    void Push(const v1::Event& event);

    absl::Mutex mu_;
    std::deque<v1::Event> queue_ ABSL_GUARDED_BY(mu_);
    size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
    bool lagged_ ABSL_GUARDED_BY(mu_) = false;
    const size_t capacity_;
    const size_t capacity_bytes_;
  };

  explicit EventBus(EventBusOptions options = {}) : options_(options) {}
  explicit EventBus(size_t per_watcher_capacity)
      : EventBus(EventBusOptions{.per_watcher_capacity = per_watcher_capacity}) {}
  // Subscriptions may outlive the bus only if they are released before it is destroyed.
  ~EventBus() = default;

  // The subscription ends (and leaves the bus) when the returned pointer is
  // released. RESOURCE_EXHAUSTED, naming the limit, past max_watchers in all
  // or max_watchers_per_owner for `owner` (a caller's subject).
  absl::StatusOr<std::shared_ptr<Subscription>> SubscribeFor(const std::string& owner,
                                                             const std::string& job_id);
  // For in-process listeners: not counted against any limit.
  std::shared_ptr<Subscription> Subscribe(const std::string& job_id);
  void Publish(const std::vector<v1::Event>& events);

  // Live subscriptions, in all and for one job (for tests and metrics).
  size_t SubscriberCount() const;
  size_t SubscriberCount(const std::string& job_id) const;

 private:
  struct Entry {
    std::weak_ptr<Subscription> subscription;
    const Subscription* raw;  // identifies the entry once `subscription` has expired
    std::string owner;
    bool counted;  // against per_owner_ (SubscribeFor)
  };
  std::shared_ptr<Subscription> AddLocked(const std::string& owner, bool counted,
                                          const std::string& job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unsubscribe(const std::string& job_id, const Subscription* subscription)
      ABSL_LOCKS_EXCLUDED(mu_);

  const EventBusOptions options_;
  mutable absl::Mutex mu_;
  std::multimap<std::string, Entry> subscribers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, size_t> per_owner_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bert::server
