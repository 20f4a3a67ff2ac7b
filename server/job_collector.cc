#include "server/job_collector.h"

#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "server/checkpoint_retention.h"
#include "server/input_store.h"
#include "server/job_model.h"
#include "server/time_util.h"
#include "storage/store_batch.h"

namespace bert::server {
namespace fs = std::filesystem;

absl::Status JobCollector::RemoveTree(const std::string& path,
                                      v1::DeleteJobResponse* response) const {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(path, ec);
  if (ec || !fs::exists(status)) return absl::OkStatus();
  int64_t files = 0, bytes = 0;
  if (fs::is_directory(status)) {
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      ++files;
      bytes += static_cast<int64_t>(it->file_size(ec));
    }
  } else {
    files = 1;
    if (fs::is_regular_file(status)) bytes = static_cast<int64_t>(fs::file_size(path, ec));
  }
  fs::remove_all(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("deleting ", path, ": ", ec.message()));
  BERT_RETURN_IF_ERROR(SyncDirectory(fs::path(path).parent_path().string()));
  response->set_files_deleted(response->files_deleted() + files);
  response->set_bytes_freed(response->bytes_freed() + bytes);
  return absl::OkStatus();
}

absl::StatusOr<v1::DeleteJobResponse> JobCollector::FinishDelete(const v1::Job& job) const {
  if (!job.delete_requested()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job.id(), ": its delete must be recorded before its files go"));
  }
  if (job.id().empty() || absl::StrContains(job.id(), "/") || job.id() == "." || job.id() == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("job id '", job.id(), "' cannot name a directory"));
  }
  absl::MutexLock lock(&mu_);
  v1::DeleteJobResponse response;
  response.set_job_id(job.id());
  // 1. Files first.
  const std::string& root = options_.artifact_root;
  if (!root.empty()) {
    BERT_RETURN_IF_ERROR(RemoveTree(absl::StrCat(root, "/", job.id()), &response));
    BERT_RETURN_IF_ERROR(RemoveTree(absl::StrCat(root, "/.partial/", job.id()), &response));
    const CheckpointRetention owner(store_, root);
    std::vector<std::string> elsewhere;
    BERT_RETURN_IF_ERROR(store_->ForEachArtifact(job.id() + "/", [&](const v1::Artifact& a) {
      const std::string path = owner.OwnedPath(a);
      if (!path.empty()) elsewhere.push_back(path);
      return true;
    }));
    for (const std::string& path : elsewhere) BERT_RETURN_IF_ERROR(RemoveTree(path, &response));
  }
  // 2. Then its records, the job record last (one batch, so in fact together).
  storage::StoreBatch batch;
  batch.DeleteJobTables(job.id());
  if (!job.idempotency_key().empty()) {
    BERT_ASSIGN_OR_RETURN(std::optional<std::string> owner,
                          store_->FindIdempotencyKey(job.submitted_by(), job.idempotency_key()));
    if (owner == job.id()) batch.DeleteIdempotencyKey(job.submitted_by(), job.idempotency_key());
  }
  batch.DeleteJob(job.id());
  BERT_RETURN_IF_ERROR(store_->Write(batch));
  // 3. The inputs only it used.
  std::vector<std::string> inputs;
  for (const v1::InputFile& input : job.input_files()) inputs.push_back(input.sha256());
  BERT_RETURN_IF_ERROR(
      RemoveUnreferencedInputs(inputs, absl::InfiniteFuture(), &response).status());
  return response;
}

absl::StatusOr<JobCollector::Due> JobCollector::FindDue(absl::Time now) const {
  Due due;
  const absl::Duration retention = options_.finished_job_retention;
  BERT_RETURN_IF_ERROR(store_->ForEachJob([&](const v1::Job& job) {
    if (job.delete_requested()) {
      due.interrupted.push_back(job);
    } else if (retention > absl::ZeroDuration() && job.state() != v1::SKIPPED &&
               IsFinal(job.state()) && job.has_finished_at() &&
               FromProto(job.finished_at()) + retention <= now) {
      due.expired.push_back(job);
    }
    return true;
  }));
  return due;
}

absl::StatusOr<int> JobCollector::CollectInputs(absl::Time now) const {
  std::vector<std::string> all;
  BERT_RETURN_IF_ERROR(
      store_->ForEachArtifact(std::string(kInputArtifactPrefix), [&](const v1::Artifact& a) {
        all.push_back(a.id().substr(kInputArtifactPrefix.size()));
        return true;
      }));
  absl::MutexLock lock(&mu_);
  v1::DeleteJobResponse ignored;
  return RemoveUnreferencedInputs(all, now - options_.unreferenced_input_grace, &ignored);
}

absl::StatusOr<int> JobCollector::RemoveUnreferencedInputs(
    const std::vector<std::string>& candidates, absl::Time uploaded_before,
    v1::DeleteJobResponse* response) const {
  if (candidates.empty()) return 0;
  BERT_ASSIGN_OR_RETURN(const std::set<std::string> referenced,
                        InputStore::ReferencedInputs(*store_));
  storage::StoreBatch batch;
  int removed = 0;
  for (const std::string& sha : std::set<std::string>(candidates.begin(), candidates.end())) {
    if (sha.empty() || referenced.contains(sha) || absl::StrContains(sha, "/")) continue;
    const std::string id = absl::StrCat(kInputArtifactPrefix, sha);
    BERT_ASSIGN_OR_RETURN(std::optional<v1::Artifact> artifact, store_->GetArtifact(id));
    if (!artifact) continue;
    const std::string path =
        options_.artifact_root.empty() ? "" : options_.artifact_root + "/" + id;
    // When it was uploaded: its record's time, else its file's.
    absl::Time uploaded = absl::InfinitePast();
    if (artifact->has_created_at()) {
      uploaded = FromProto(artifact->created_at());
    } else if (struct stat st; !path.empty() && ::stat(path.c_str(), &st) == 0) {
      uploaded = absl::FromUnixSeconds(st.st_mtime);
    }
    if (uploaded >= uploaded_before) continue;
    if (!path.empty()) {
      BERT_RETURN_IF_ERROR(RemoveTree(path, response));
      BERT_RETURN_IF_ERROR(RemoveTree(options_.artifact_root + "/.partial/" + id, response));
    }
    batch.DeleteArtifact(id);
    ++removed;
  }
  if (!batch.empty()) BERT_RETURN_IF_ERROR(store_->Write(batch));
  return removed;
}

}  // namespace bert::server
