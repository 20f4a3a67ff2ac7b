// A set of store writes applied atomically: a state change and the events that
// describe it go into one batch, so a crash never separates them.
#pragma once

#include <cstdint>
#include <string_view>

#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "rocksdb/write_batch.h"

namespace bert::storage {

// Not thread-safe; build it on one thread, then hand it to Store::Write.
class StoreBatch {
 public:
  void PutJob(const v1::Job& job);
  // Metric events are also indexed in the metrics table.
  void PutEvent(const v1::Event& event);
  void PutCheckpoint(const v1::CheckpointRecord& record);
  void PutAgent(const v1::AgentInfo& agent);
  void PutArtifact(const v1::Artifact& artifact);
  // Deletions: a checkpoint record (by job and step) and an artifact record.
  void DeleteCheckpoint(std::string_view job_id, int64_t step);
  void DeleteArtifact(std::string_view artifact_id);
  void PutIdempotencyKey(std::string_view subject, std::string_view key, std::string_view job_id);
  // Deleting a job (DeleteJob): its record, its idempotency key, and every
  // key of a per-job table (events, metrics, checkpoints, artifacts with ids
  // under "<job>/"), each table by key range.
  void DeleteJob(std::string_view job_id);
  void DeleteIdempotencyKey(std::string_view subject, std::string_view key);
  void DeleteJobTables(std::string_view job_id);

  int count() const { return batch_.Count(); }
  bool empty() const { return batch_.Count() == 0; }

 private:
  friend class Store;
  void Put(const std::string& key, const google::protobuf::MessageLite& value);
  // Deletes every key that starts with `prefix`.
  void DeletePrefix(const std::string& prefix);

  rocksdb::WriteBatch batch_;
};

}  // namespace bert::storage
