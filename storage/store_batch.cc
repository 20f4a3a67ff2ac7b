#include "storage/store_batch.h"

#include "storage/keys.h"

namespace bert::storage {

void StoreBatch::Put(const std::string& key, const google::protobuf::MessageLite& value) {
  batch_.Put(key, value.SerializeAsString());
}

void StoreBatch::PutJob(const v1::Job& job) { Put(keys::Job(job.id()), job); }

void StoreBatch::PutEvent(const v1::Event& event) {
  Put(keys::Event(event.job_id(), event.seq()), event);
  if (event.has_metric()) {
    Put(keys::Metric(event.job_id(), event.metric().name(), event.seq()), event.metric());
  }
}

void StoreBatch::PutCheckpoint(const v1::CheckpointRecord& record) {
  Put(keys::Checkpoint(record.job_id(), record.step()), record);
}

void StoreBatch::PutAgent(const v1::AgentInfo& agent) { Put(keys::Agent(agent.id()), agent); }

void StoreBatch::PutArtifact(const v1::Artifact& artifact) {
  Put(keys::Artifact(artifact.id()), artifact);
}

void StoreBatch::DeleteCheckpoint(std::string_view job_id, int64_t step) {
  batch_.Delete(keys::Checkpoint(job_id, step));
}

void StoreBatch::DeleteArtifact(std::string_view artifact_id) {
  batch_.Delete(keys::Artifact(artifact_id));
}

void StoreBatch::PutIdempotencyKey(std::string_view subject, std::string_view key,
                                   std::string_view job_id) {
  batch_.Put(keys::Idempotency(subject, key), rocksdb::Slice(job_id.data(), job_id.size()));
}

void StoreBatch::DeletePrefix(const std::string& prefix) {
  // [prefix, successor): the successor bumps the last byte that is not 0xff.
  std::string end = prefix;
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return;  // never: every prefix here ends in '/' or '\0'
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  batch_.DeleteRange(prefix, end);
}

void StoreBatch::DeleteJob(std::string_view job_id) { batch_.Delete(keys::Job(job_id)); }

void StoreBatch::DeleteIdempotencyKey(std::string_view subject, std::string_view key) {
  batch_.Delete(keys::Idempotency(subject, key));
}

void StoreBatch::DeleteJobTables(std::string_view job_id) {
  DeletePrefix(keys::EventPrefix(job_id));
  DeletePrefix(keys::MetricPrefix(job_id));
  DeletePrefix(keys::CheckpointPrefix(job_id));
  DeletePrefix(keys::JobArtifactPrefix(job_id));
}

}  // namespace bert::storage
