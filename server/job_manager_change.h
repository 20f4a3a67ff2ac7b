// Private to job_manager*.cc: one job's change in progress.
#pragma once

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "server/job_manager.h"
#include "storage/store_batch.h"

namespace bert::server {

// The job copy to commit, its store batch, the events to publish once durable,
// the assignments to hand out, and the transitions to count.
struct JobManager::Change {
  explicit Change(v1::Job j) : job(std::move(j)) {}
  v1::Job job;
  storage::StoreBatch batch;
  std::vector<v1::Event> events;
  std::vector<std::pair<std::string, v1::Assignment>> deliveries;
  std::vector<std::pair<v1::State, v1::State>> job_transitions;
  std::vector<std::tuple<v1::StageKind, v1::State, v1::State>> stage_transitions;
};

}  // namespace bert::server
