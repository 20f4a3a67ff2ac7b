// The controller's durable state in RocksDB: jobs, events, metrics, checkpoint
// records, agents and artifacts (key layout in keys.h), protos as values.
//
// Every write is a StoreBatch committed with a synced WAL, so what Write()
// acknowledged survives kill -9. The database carries a schema version; Open
// refuses a database written by a newer or unknown schema.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "storage/store_batch.h"

namespace rocksdb {
class DB;
}

namespace bert::storage {

inline constexpr int kSchemaVersion = 1;

// Thread-safe: reads and writes may come from any thread.
class Store {
 public:
  // Opens (creating if needed) the database in directory `dir`.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir);
  ~Store();

  // Applies the batch atomically and durably (fsync'ed WAL).
  absl::Status Write(StoreBatch& batch);

  absl::StatusOr<std::optional<v1::Job>> GetJob(const std::string& job_id) const;
  // Calls `fn` for every job in id order; stops early when it returns false.
  absl::Status ForEachJob(const std::function<bool(const v1::Job&)>& fn) const;
  // Calls `fn` for every job with an id before `before_id` (every job when
  // empty), newest id first; stops early when it returns false.
  absl::Status ForEachJobBefore(const std::string& before_id,
                                const std::function<bool(const v1::Job&)>& fn) const;
  // The job id recorded for (subject, key), if any.
  absl::StatusOr<std::optional<std::string>> FindIdempotencyKey(const std::string& subject,
                                                                const std::string& key) const;

  // A job's events with seq > after_seq, in seq order, at most `limit`.
  absl::StatusOr<std::vector<v1::Event>> ListEvents(const std::string& job_id, int64_t after_seq,
                                                     int limit) const;
  // A job's metric points, ordered by name then seq; `names` empty = all.
  // Unbounded: RPC handlers use ListMetricsPage.
  absl::StatusOr<std::vector<v1::MetricPoint>> ListMetrics(
      const std::string& job_id, const std::vector<std::string>& names) const;
  // One page of the same points, from `start` (empty = the first point, else
  // a previous page's `next`), at most `max_points` points whose encoded sizes
  // sum to at most `max_bytes` (a page holds at least one point). `next` is
  // empty on the last page; otherwise it is an opaque key for the next call.
  // Names are read in sorted order, each once.
  struct MetricPage {
    std::vector<v1::MetricPoint> points;
    std::string next;
  };
  absl::StatusOr<MetricPage> ListMetricsPage(const std::string& job_id,
                                             const std::vector<std::string>& names,
                                             const std::string& start, size_t max_points,
                                             size_t max_bytes) const;
  // A job's checkpoint records by step, oldest first.
  absl::StatusOr<std::vector<v1::CheckpointRecord>> ListCheckpoints(const std::string& job_id) const;
  // One page of them from `start` (empty = the oldest, else a previous page's
  // `next`): at most `max_records` whose encoded sizes sum to at most
  // `max_bytes` (at least one). `next` is empty on the last page.
  struct CheckpointPage {
    std::vector<v1::CheckpointRecord> records;
    std::string next;
  };
  absl::StatusOr<CheckpointPage> ListCheckpointsPage(const std::string& job_id,
                                                     const std::string& start, size_t max_records,
                                                     size_t max_bytes) const;
  absl::StatusOr<std::vector<v1::AgentInfo>> ListAgents() const;
  absl::StatusOr<std::optional<v1::Artifact>> GetArtifact(const std::string& artifact_id) const;
  // Calls `fn` for every artifact whose id starts with `id_prefix`, in id
  // order; stops early when it returns false.
  absl::Status ForEachArtifact(const std::string& id_prefix,
                               const std::function<bool(const v1::Artifact&)>& fn) const;
  // Every key starting with `prefix` (raw bytes), at most `limit`: what a test
  // or an operator checks after a delete.
  absl::StatusOr<std::vector<std::string>> KeysWithPrefix(const std::string& prefix,
                                                          size_t limit) const;

  int schema_version() const { return kSchemaVersion; }

 private:
  explicit Store(std::unique_ptr<rocksdb::DB> db);

  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace bert::storage
