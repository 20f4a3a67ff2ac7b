#include "server/controller_metrics_feed.h"

#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "server/job_model.h"
#include "server/time_util.h"

namespace bert::server {
namespace {

constexpr v1::State kStageStates[] = {v1::QUEUED, v1::RUNNING,   v1::PAUSED, v1::SUCCEEDED,
                                      v1::FAILED, v1::CANCELLED, v1::SKIPPED};

// Every job the manager holds whose state is in `states` (all when empty),
// page by page (each page is copied under the manager's lock, not the whole list).
std::vector<v1::Job> ListAllJobs(const JobManager& manager, std::vector<v1::State> states) {
  std::vector<v1::Job> jobs;
  v1::ListJobsRequest request;
  request.set_page_size(1000);
  for (v1::State state : states) request.add_states(state);
  for (;;) {
    absl::StatusOr<v1::ListJobsResponse> page = manager.ListJobs(request);
    if (!page.ok()) break;
    for (v1::Job& job : *page->mutable_jobs()) jobs.push_back(std::move(job));
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  return jobs;
}

// A finished stage reads as complete, whatever its last report said.
v1::Progress CompletedProgress(const v1::Progress& last) {
  v1::Progress done = last;
  if (done.total() <= 0) done.set_total(1);
  done.set_done(done.total());
  done.set_eta_seconds(0);
  return done;
}

}  // namespace

ControllerMetricsFeed::ControllerMetricsFeed(const JobManager* manager,
                                             metrics::ControllerMetrics* metrics,
                                             const Clock* clock,
                                             ControllerMetricsFeedOptions options)
    : manager_(manager), metrics_(metrics), clock_(clock), options_(std::move(options)) {}

ControllerMetricsFeed::~ControllerMetricsFeed() { Stop(); }

void ControllerMetricsFeed::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    do {
      PollOnce();
    } while (!stop_.WaitForNotificationWithTimeout(options_.interval));
  });
}

void ControllerMetricsFeed::Stop() {
  if (!thread_.joinable()) return;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  thread_.join();
}

void ControllerMetricsFeed::PollOnce() {
  const absl::Time now = clock_->Now();
  if (!recounted_) {
    RecountStages();
    recounted_ = true;
  }
  const std::set<std::string> active = FeedActiveJobs(now);
  FinishEndedJobs(active, now);
  metrics_->ExpireFinishedJobs(now);
  FeedAgents();
  FeedStoreSize();
}

std::set<std::string> ControllerMetricsFeed::FeedActiveJobs(absl::Time now) {
  std::set<std::string> active;
  std::map<std::string, int64_t> queued;
  std::map<std::string, int64_t> unschedulable;
  for (const v1::Job& job : manager_->ActiveJobs()) {
    active.insert(job.id());
    for (const v1::Stage& stage : job.stages()) {
      pools_.insert(PoolOf(job.spec(), stage.kind()));
      // Per-job series start with the job's first report, as SetJobMetric's do.
      if (stage.state() == v1::RUNNING && stage.has_progress()) {
        metrics_->SetStageProgress(job.id(), stage.kind(), stage.progress());
      } else if (stage.state() == v1::SUCCEEDED && stage.has_progress()) {
        metrics_->SetStageProgress(job.id(), stage.kind(), CompletedProgress(stage.progress()));
      }
    }
    const v1::Stage* current = CurrentStage(job);
    if (current != nullptr && !IsFinal(current->state())) {
      queued[PoolOf(job.spec(), current->kind())] +=
          static_cast<int64_t>(ReadyTasks(*current, now).size());
      if (!current->waiting_reason().empty()) ++unschedulable[PoolOf(job.spec(), current->kind())];
    }
  }
  for (const std::string& pool : pools_) {
    auto it = queued.find(pool);
    metrics_->SetQueueLength(pool, it == queued.end() ? 0 : it->second);
    auto stuck = unschedulable.find(pool);
    metrics_->SetUnschedulableJobs(pool, stuck == unschedulable.end() ? 0 : stuck->second);
  }
  return active;
}

void ControllerMetricsFeed::FinishEndedJobs(const std::set<std::string>& active, absl::Time now) {
  for (const std::string& job_id : metrics_->jobs().UnfinishedJobIds()) {
    if (active.contains(job_id)) continue;
    absl::StatusOr<v1::Job> job = manager_->GetJob(job_id);
    if (!job.ok()) {
      if (absl::IsNotFound(job.status())) metrics_->jobs().ForgetJob(job_id);
      continue;
    }
    if (!IsFinal(job->state())) continue;  // it started after the listing
    // Its last stage's final progress, then the retention clock.
    for (const v1::Stage& stage : job->stages()) {
      if (stage.state() == v1::SUCCEEDED && stage.has_progress()) {
        metrics_->SetStageProgress(job_id, stage.kind(), CompletedProgress(stage.progress()));
      }
    }
    metrics_->OnJobFinished(job_id, now);
  }
}

void ControllerMetricsFeed::RecountStages() {
  std::map<std::pair<v1::StageKind, v1::State>, int64_t> counts;
  for (const v1::Job& job : ListAllJobs(*manager_, {})) {
    for (const v1::Stage& stage : job.stages()) ++counts[{stage.kind(), stage.state()}];
  }
  for (v1::StageKind kind : protocol::PipelineStages()) {
    for (v1::State state : kStageStates) {
      auto it = counts.find({kind, state});
      metrics_->SetStagesByState(kind, state, it == counts.end() ? 0 : it->second);
    }
  }
}

void ControllerMetricsFeed::FeedAgents() {
  std::map<std::pair<std::string, bool>, int64_t> counts;
  for (const v1::AgentInfo& agent : manager_->ListAgents("")) {
    for (const std::string& pool : agent.pools()) {
      ++counts[{pool, agent.healthy()}];
      pools_.insert(pool);
    }
  }
  for (const auto& [key, n] : counts) agent_series_.insert(key);
  for (const auto& key : agent_series_) {
    auto it = counts.find(key);
    metrics_->SetAgents(key.first, key.second, it == counts.end() ? 0 : it->second);
  }
}

void ControllerMetricsFeed::FeedStoreSize() {
  if (options_.store_dir.empty()) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  int64_t bytes = 0;
  for (fs::recursive_directory_iterator it(options_.store_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    if (!it->is_regular_file(size_ec)) continue;
    const uintmax_t size = it->file_size(size_ec);
    if (!size_ec) bytes += static_cast<int64_t>(size);  // files may vanish (compaction)
  }
  if (ec && bytes == 0) return;
  metrics_->SetStoreSizeBytes(bytes);
}

}  // namespace bert::server
