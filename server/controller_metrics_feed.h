// Feeds the controller metrics that no single event sets, by polling the
// JobManager's public queries: each running job's stage progress, queue
// length by pool, agents by pool and health, the RocksDB size on disk, and
// the lifecycle of per-job series (finished jobs' series go after the
// retention period). On its first poll it also recounts stages by state, which
// the JobManager only moves by transitions.
#pragma once

#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "metrics/controller_metrics.h"
#include "server/clock.h"
#include "server/job_manager.h"

namespace bert::server {

struct ControllerMetricsFeedOptions {
  absl::Duration interval = absl::Seconds(2);
  std::string store_dir;  // RocksDB directory to size; empty: not measured
};

// `manager`, `metrics` and `clock` must outlive the feed. PollOnce is not
// re-entrant (one poller: the feed's own thread, or a test); Start/Stop are
// called from one thread.
class ControllerMetricsFeed {
 public:
  ControllerMetricsFeed(const JobManager* manager, metrics::ControllerMetrics* metrics,
                        const Clock* clock, ControllerMetricsFeedOptions options);
  ControllerMetricsFeed(const ControllerMetricsFeed&) = delete;
  ControllerMetricsFeed& operator=(const ControllerMetricsFeed&) = delete;
  ~ControllerMetricsFeed();  // Stop()

  // Polls every `interval` on a thread of its own until Stop().
  void Start();
  void Stop();

  // One poll (what the thread does each interval).
  void PollOnce();

 private:
  // Sets the per-job and queue gauges from the unfinished jobs; returns their ids.
  std::set<std::string> FeedActiveJobs(absl::Time now);
  // Starts the retention clock of jobs that have series but ended.
  void FinishEndedJobs(const std::set<std::string>& active, absl::Time now);
  void RecountStages();
  void FeedAgents();
  void FeedStoreSize();

  const JobManager* const manager_;
  metrics::ControllerMetrics* const metrics_;
  const Clock* const clock_;
  const ControllerMetricsFeedOptions options_;

  bool recounted_ = false;
  std::set<std::string> pools_;  // every pool seen, so an emptied queue reads 0
  std::set<std::pair<std::string, bool>> agent_series_;  // (pool, healthy) ever set

  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace bert::server
