#include "storage/store.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/keys.h"

namespace bert::storage {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat("rocksdb ", std::string(what), ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

template <typename Message>
absl::Status ParseValue(const rocksdb::Slice& key, const rocksdb::Slice& value, Message* out) {
  if (!out->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("store: cannot parse the value of key '",
                                            std::string(key.data(), key.size()), "'"));
  }
  return absl::OkStatus();
}

bool StartsWith(const rocksdb::Slice& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::string_view(s.data(), prefix.size()) == prefix;
}

// Calls fn(key, value) for every key with `prefix`, from `start` (>= prefix).
absl::Status Scan(rocksdb::DB* db, std::string_view prefix, const std::string& start,
                  const std::function<absl::Status(const rocksdb::Slice&, const rocksdb::Slice&,
                                                   bool* stop)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  bool stop = false;
  for (it->Seek(start); it->Valid() && StartsWith(it->key(), prefix) && !stop; it->Next()) {
    BERT_RETURN_IF_ERROR(fn(it->key(), it->value(), &stop));
  }
  return FromRocks(it->status(), "scan");
}

}  // namespace

Store::Store(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

Store::~Store() = default;

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.max_open_files = 256;
  rocksdb::DB* raw = nullptr;
  BERT_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, dir, &raw), "open " + dir));
  std::unique_ptr<rocksdb::DB> db(raw);

  std::string version;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), std::string(keys::kSchemaVersion), &version);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    BERT_RETURN_IF_ERROR(FromRocks(
        db->Put(wo, std::string(keys::kSchemaVersion), std::to_string(kSchemaVersion)),
        "write schema version"));
  } else {
    BERT_RETURN_IF_ERROR(FromRocks(s, "read schema version"));
    int v = 0;
    if (!absl::SimpleAtoi(version, &v) || v != kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("store ", dir, ": schema version '", version, "' is not the supported ",
                       kSchemaVersion));
    }
  }
  return std::unique_ptr<Store>(new Store(std::move(db)));
}

absl::Status Store::Write(StoreBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Write(wo, &batch.batch_), "write");
}

absl::StatusOr<std::optional<v1::Job>> Store::GetJob(const std::string& job_id) const {
  std::string value;
  const std::string key = keys::Job(job_id);
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
  if (s.IsNotFound()) return std::optional<v1::Job>();
  BERT_RETURN_IF_ERROR(FromRocks(s, "get job"));
  v1::Job job;
  BERT_RETURN_IF_ERROR(ParseValue(key, value, &job));
  return std::optional<v1::Job>(std::move(job));
}

absl::Status Store::ForEachJob(const std::function<bool(const v1::Job&)>& fn) const {
  return Scan(db_.get(), keys::kJobPrefix, std::string(keys::kJobPrefix),
              [&](const rocksdb::Slice& k, const rocksdb::Slice& v, bool* stop) {
                v1::Job job;
                BERT_RETURN_IF_ERROR(ParseValue(k, v, &job));
                *stop = !fn(job);
                return absl::OkStatus();
              });
}

absl::Status Store::ForEachJobBefore(const std::string& before_id,
                                     const std::function<bool(const v1::Job&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  if (before_id.empty()) {
    // The last key of the table: just before the first key past the prefix.
    std::string end(keys::kJobPrefix);
    end.back() = static_cast<char>(end.back() + 1);
    it->SeekForPrev(end);
    if (it->Valid() && it->key() == rocksdb::Slice(end)) it->Prev();
  } else {
    const std::string start = keys::Job(before_id);
    it->SeekForPrev(start);
    if (it->Valid() && it->key() == rocksdb::Slice(start)) it->Prev();
  }
  for (; it->Valid() && StartsWith(it->key(), keys::kJobPrefix); it->Prev()) {
    v1::Job job;
    BERT_RETURN_IF_ERROR(ParseValue(it->key(), it->value(), &job));
    if (!fn(job)) break;
  }
  return FromRocks(it->status(), "scan jobs");
}

absl::StatusOr<std::optional<std::string>> Store::FindIdempotencyKey(
    const std::string& subject, const std::string& key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), keys::Idempotency(subject, key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  BERT_RETURN_IF_ERROR(FromRocks(s, "get idempotency key"));
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<std::vector<v1::Event>> Store::ListEvents(const std::string& job_id,
                                                          int64_t after_seq, int limit) const {
  std::vector<v1::Event> out;
  if (limit <= 0) return out;
  BERT_RETURN_IF_ERROR(Scan(db_.get(), keys::EventPrefix(job_id),
                            keys::Event(job_id, after_seq + 1),
                            [&](const rocksdb::Slice& k, const rocksdb::Slice& v, bool* stop) {
                              BERT_RETURN_IF_ERROR(ParseValue(k, v, &out.emplace_back()));
                              *stop = static_cast<int>(out.size()) >= limit;
                              return absl::OkStatus();
                            }));
  return out;
}

absl::StatusOr<std::vector<v1::MetricPoint>> Store::ListMetrics(
    const std::string& job_id, const std::vector<std::string>& names) const {
  std::vector<v1::MetricPoint> out;
  auto collect = [&](const std::string& prefix) {
    return Scan(db_.get(), prefix, prefix,
                [&](const rocksdb::Slice& k, const rocksdb::Slice& v, bool*) {
                  return ParseValue(k, v, &out.emplace_back());
                });
  };
  if (names.empty()) {
    BERT_RETURN_IF_ERROR(collect(keys::MetricPrefix(job_id)));
  } else {
    for (const std::string& name : names) {
      std::string prefix = keys::MetricPrefix(job_id) + name;
      prefix.push_back('\0');
      BERT_RETURN_IF_ERROR(collect(prefix));
    }
  }
  return out;
}

absl::StatusOr<Store::MetricPage> Store::ListMetricsPage(const std::string& job_id,
                                                         const std::vector<std::string>& names,
                                                         const std::string& start,
                                                         size_t max_points,
                                                         size_t max_bytes) const {
  MetricPage page;
  const std::string job_prefix = keys::MetricPrefix(job_id);
  // `start` is a key suffix after job_prefix: "<name>\0<seq:020>".
  const size_t nul = start.find('\0');
  if (!start.empty() && nul == std::string::npos) {
    return absl::InvalidArgumentError("page_token: not a token from a previous page");
  }
  const std::string start_name = start.substr(0, nul == std::string::npos ? 0 : nul);
  size_t bytes = 0;
  auto collect = [&](const std::string& prefix, const std::string& from) {
    return Scan(db_.get(), prefix, from,
                [&](const rocksdb::Slice& k, const rocksdb::Slice& v, bool* stop) {
                  if (page.points.size() >= max_points ||
                      (!page.points.empty() && bytes + v.size() > max_bytes)) {
                    page.next.assign(k.data() + job_prefix.size(), k.size() - job_prefix.size());
                    *stop = true;
                    return absl::OkStatus();
                  }
                  bytes += v.size();
                  return ParseValue(k, v, &page.points.emplace_back());
                });
  };
  if (names.empty()) {
    BERT_RETURN_IF_ERROR(collect(job_prefix, job_prefix + start));
    return page;
  }
  std::vector<std::string> sorted(names);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (const std::string& name : sorted) {
    if (!start.empty() && name < start_name) continue;  // on an earlier page
    std::string prefix = job_prefix + name;
    prefix.push_back('\0');
    BERT_RETURN_IF_ERROR(collect(prefix, name == start_name ? job_prefix + start : prefix));
    if (!page.next.empty()) break;
  }
  return page;
}

absl::StatusOr<std::vector<v1::CheckpointRecord>> Store::ListCheckpoints(
    const std::string& job_id) const {
  std::vector<v1::CheckpointRecord> out;
  const std::string prefix = keys::CheckpointPrefix(job_id);
  BERT_RETURN_IF_ERROR(Scan(db_.get(), prefix, prefix,
                            [&](const rocksdb::Slice& k, const rocksdb::Slice& v, bool*) {
                              return ParseValue(k, v, &out.emplace_back());
                            }));
  return out;
}

absl::StatusOr<Store::CheckpointPage> Store::ListCheckpointsPage(const std::string& job_id,
                                                                 const std::string& start,
                                                                 size_t max_records,
                                                                 size_t max_bytes) const {
  CheckpointPage page;
  const std::string prefix = keys::CheckpointPrefix(job_id);
  size_t bytes = 0;
  BERT_RETURN_IF_ERROR(Scan(db_.get(), prefix, prefix + start,
                            [&](const rocksdb::Slice& k, const rocksdb::Slice& v, bool* stop) {
                              if (page.records.size() >= max_records ||
                                  (!page.records.empty() && bytes + v.size() > max_bytes)) {
                                page.next.assign(k.data() + prefix.size(), k.size() - prefix.size());
                                *stop = true;
                                return absl::OkStatus();
                              }
                              bytes += v.size();
                              return ParseValue(k, v, &page.records.emplace_back());
                            }));
  return page;
}

absl::StatusOr<std::vector<v1::AgentInfo>> Store::ListAgents() const {
  std::vector<v1::AgentInfo> out;
  BERT_RETURN_IF_ERROR(Scan(db_.get(), keys::kAgentPrefix, std::string(keys::kAgentPrefix),
                            [&](const rocksdb::Slice& k, const rocksdb::Slice& v, bool*) {
                              return ParseValue(k, v, &out.emplace_back());
                            }));
  return out;
}

absl::StatusOr<std::optional<v1::Artifact>> Store::GetArtifact(
    const std::string& artifact_id) const {
  std::string value;
  const std::string key = keys::Artifact(artifact_id);
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
  if (s.IsNotFound()) return std::optional<v1::Artifact>();
  BERT_RETURN_IF_ERROR(FromRocks(s, "get artifact"));
  v1::Artifact artifact;
  BERT_RETURN_IF_ERROR(ParseValue(key, value, &artifact));
  return std::optional<v1::Artifact>(std::move(artifact));
}

absl::Status Store::ForEachArtifact(const std::string& id_prefix,
                                    const std::function<bool(const v1::Artifact&)>& fn) const {
  const std::string prefix = keys::Artifact(id_prefix);
  return Scan(db_.get(), prefix, prefix,
              [&](const rocksdb::Slice& k, const rocksdb::Slice& v, bool* stop) {
                v1::Artifact artifact;
                BERT_RETURN_IF_ERROR(ParseValue(k, v, &artifact));
                *stop = !fn(artifact);
                return absl::OkStatus();
              });
}

absl::StatusOr<std::vector<std::string>> Store::KeysWithPrefix(const std::string& prefix,
                                                               size_t limit) const {
  std::vector<std::string> out;
  BERT_RETURN_IF_ERROR(Scan(db_.get(), prefix, prefix,
                            [&](const rocksdb::Slice& k, const rocksdb::Slice&, bool* stop) {
                              out.emplace_back(k.data(), k.size());
                              *stop = out.size() >= limit;
                              return absl::OkStatus();
                            }));
  return out;
}

}  // namespace bert::storage
