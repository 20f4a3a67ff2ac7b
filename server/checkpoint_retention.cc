#include "server/checkpoint_retention.h"

#include <cstdint>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "server/artifact_store.h"
#include "storage/store_batch.h"

namespace bert::server {
namespace fs = std::filesystem;

std::string CheckpointRetention::OwnedPath(const v1::Artifact& artifact) const {
  if (artifact_root_.empty() || !ArtifactStore::CheckId(artifact.id()).ok()) return "";
  absl::string_view uri = artifact.uri();
  if (!absl::ConsumePrefix(&uri, "file://")) return artifact_root_ + "/" + artifact.id();
  const fs::path root = fs::path(artifact_root_).lexically_normal();
  const fs::path path = fs::path(std::string(uri)).lexically_normal();
  const fs::path inside = path.lexically_relative(root);
  if (!path.is_absolute() || inside.empty() || *inside.begin() == ".." || *inside.begin() == ".") {
    return "";
  }
  return path.string();
}

absl::StatusOr<int> CheckpointRetention::Enforce(const std::string& job_id, int64_t limit) const {
  if (limit <= 0) return 0;
  BERT_ASSIGN_OR_RETURN(std::vector<v1::CheckpointRecord> records, store_->ListCheckpoints(job_id));
  if (static_cast<int64_t>(records.size()) <= limit) return 0;
  records.resize(records.size() - static_cast<size_t>(limit));  // oldest first: the ones to go
  // Files first, each directory made durable, so that no record outlives them
  // for longer than an interrupted delete (which CollectGarbage finishes).
  for (const v1::CheckpointRecord& record : records) {
    const std::string path = OwnedPath(record.artifact());
    if (path.empty()) continue;
    std::error_code ec;
    const std::uintmax_t removed = fs::remove_all(path, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("checkpoint retention: removing ", path, " (job ",
                                              job_id, ", step ", record.step(),
                                              "): ", ec.message()));
    }
    if (removed > 0) BERT_RETURN_IF_ERROR(SyncDirectory(fs::path(path).parent_path().string()));
  }
  storage::StoreBatch batch;
  for (const v1::CheckpointRecord& record : records) {
    batch.DeleteCheckpoint(job_id, record.step());
    if (!record.artifact().id().empty()) batch.DeleteArtifact(record.artifact().id());
  }
  BERT_RETURN_IF_ERROR(store_->Write(batch));
  return static_cast<int>(records.size());
}

absl::StatusOr<int> CheckpointRetention::CollectGarbage() const {
  std::vector<std::pair<std::string, int64_t>> limited;
  BERT_RETURN_IF_ERROR(store_->ForEachJob([&](const v1::Job& job) {
    const int64_t limit = job.spec().training().save_total_limit();
    if (limit > 0) limited.emplace_back(job.id(), limit);
    return true;
  }));
  int deleted = 0;
  for (const auto& [job_id, limit] : limited) {
    BERT_ASSIGN_OR_RETURN(int n, Enforce(job_id, limit));
    deleted += n;
  }
  return deleted;
}

}  // namespace bert::server
