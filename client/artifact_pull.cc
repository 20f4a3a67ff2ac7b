#include "client/artifact_pull.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "protocol/artifact_manifest.h"
#include "protocol/checkpoint_names.h"

namespace bert::client {
namespace fs = std::filesystem;
namespace {

std::string MarkerText(const std::string& job_id, const bert::v1::Artifact& artifact) {
  return absl::StrCat("job ", job_id, "\nartifact ", artifact.id(), "\nsha256 ", artifact.sha256(),
                      "\n");
}

// The marker's fields ("job", "artifact", "sha256"); empty when unreadable.
std::map<std::string, std::string> ReadMarker(const fs::path& dir) {
  std::map<std::string, std::string> fields;
  auto text = ReadFile((dir / kPullMarker).string());
  if (!text.ok()) return fields;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    fields[kv.first] = kv.second;
  }
  return fields;
}

// Whether `dir`'s files other than the marker are exactly `artifact`.
bool HoldsExactly(const fs::path& dir, const bert::v1::Artifact& artifact) {
  auto local = protocol::DescribeLocalArtifact(dir.string());
  if (!local.ok() || !local->is_directory) return false;
  std::vector<protocol::ManifestEntry> files;
  int64_t size = 0;
  for (const protocol::ManifestEntry& e : local->files) {
    if (e.relative_path == kPullMarker) continue;
    size += e.size;
    files.push_back(e);
  }
  return size == artifact.size_bytes() && Sha256Hex(protocol::ManifestText(files)) == artifact.sha256();
}

// Bytes a partial download at `partial` holds.
int64_t HeldBytes(const fs::path& partial) {
  std::error_code ec;
  if (fs::is_regular_file(partial, ec)) return static_cast<int64_t>(fs::file_size(partial, ec));
  int64_t held = 0;
  for (const std::string& rel : protocol::ListManifestFiles(partial.string())) {
    held += static_cast<int64_t>(fs::file_size(partial / rel, ec));
  }
  return held;
}

// Wraps `options.progress`, sleeping to keep this run's average rate under
// `options.limit_bytes_per_second`.
protocol::DownloadOptions TransferOptions(const PullOptions& options) {
  protocol::DownloadOptions out;
  const int64_t limit = options.limit_bytes_per_second;
  auto started = std::make_shared<std::chrono::steady_clock::time_point>();
  auto first = std::make_shared<int64_t>(-1);
  out.progress = [progress = options.progress, limit, started, first](int64_t have, int64_t total) {
    if (progress) progress(have, total);
    if (limit <= 0) return;
    if (*first < 0) {
      *first = have;
      *started = std::chrono::steady_clock::now();
      return;
    }
    const auto due = *started + std::chrono::microseconds((have - *first) * 1'000'000 / limit);
    std::this_thread::sleep_until(due);
  };
  return out;
}

absl::Status Refuse(const fs::path& dir, const std::string& why) {
  return absl::FailedPreconditionError(absl::StrCat(
      "'", dir.string(), "' ", why,
      "; a pull goes only to a new or empty directory, or to one holding an earlier pull of the "
      "same job's same artifact (marker ", kPullMarker, "): choose another --to"));
}

absl::StatusOr<PullResult> PullFile(BertClient& client, const std::string& job_id,
                                    const bert::v1::Artifact& artifact, const fs::path& dir,
                                    const PullOptions& options) {
  PullResult result;
  const fs::path dest = dir / artifact.name();
  result.path = dest.string();
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    if (protocol::VerifyLocalArtifact(dest.string(), artifact).ok()) {
      result.already_there = true;
      return result;
    }
    return Refuse(dest, "exists and is not this artifact");
  }
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", dir.string(), ": ", ec.message()));
  result.resumed_from = HeldBytes(protocol::PartialPathFor(dest.string()));
  BERT_RETURN_IF_ERROR(client.PullArtifact(job_id, artifact, dest.string(), TransferOptions(options)));
  return result;
}

}  // namespace

absl::StatusOr<bert::v1::Artifact> SelectArtifact(const std::vector<bert::v1::Artifact>& artifacts,
                                                  const std::string& job_id,
                                                  const std::string& name) {
  for (const bert::v1::Artifact& a : artifacts) {
    if (a.name() == name || a.id() == name) return a;
  }
  std::vector<std::string> names;
  for (const bert::v1::Artifact& a : artifacts) {
    if (!protocol::ParseCheckpointStep(a.name())) names.push_back(a.name());
  }
  std::string why = protocol::ParseCheckpointStep(name)
                        ? " (bertctl pull JOB checkpoints lists them)"
                        : "";
  return absl::NotFoundError(absl::StrCat(
      "job ", job_id, " has no artifact '", name, "'", why, "; it has: ",
      names.empty() ? std::string("none yet") : absl::StrJoin(names, ", ")));
}

absl::StatusOr<PullResult> PullInto(BertClient& client, const std::string& job_id,
                                    const bert::v1::Artifact& artifact, const std::string& dir_arg,
                                    const PullOptions& options) {
  if (dir_arg.empty()) return absl::InvalidArgumentError("--to: an empty directory name");
  std::error_code ec;
  fs::path dir = fs::absolute(dir_arg, ec).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "out/" -> "out"
  if (!artifact.is_directory()) return PullFile(client, job_id, artifact, dir, options);

  PullResult result;
  result.path = dir.string();
  bool replace = false;  // DIR holds an earlier pull of this artifact
  if (fs::is_symlink(dir, ec)) return Refuse(dir, "is a symbolic link");
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) return Refuse(dir, "exists and is not a directory");
    if (!fs::is_empty(dir, ec)) {
      std::map<std::string, std::string> marker = ReadMarker(dir);
      if (marker.empty()) return Refuse(dir, "holds files that no pull wrote");
      if (marker["job"] != job_id || marker["artifact"] != artifact.id()) {
        return Refuse(dir, absl::StrCat("holds a pull of ", marker["artifact"], " of job ",
                                        marker["job"]));
      }
      if (marker["sha256"] == artifact.sha256() && HoldsExactly(dir, artifact)) {
        result.already_there = true;
        return result;
      }
      replace = true;
    }
  }
  const fs::path parent = dir.parent_path();
  const std::string base = dir.filename().string();
  const fs::path staging = parent / ("." + base + ".bertctl-pull");
  const fs::path old = parent / ("." + base + ".bertctl-old");
  fs::create_directories(parent, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", parent.string(), ": ", ec.message()));
  result.resumed_from = HeldBytes(protocol::PartialPathFor(staging.string()));
  BERT_RETURN_IF_ERROR(
      client.PullArtifact(job_id, artifact, staging.string(), TransferOptions(options)));
  BERT_RETURN_IF_ERROR(
      WriteFileAtomically((staging / kPullMarker).string(), MarkerText(job_id, artifact)));
  // Verified and marked: now it takes DIR's name (an earlier pull is moved
  // aside first and removed last; an empty DIR is removed).
  if (replace) {
    fs::remove_all(old, ec);
    fs::rename(dir, old, ec);
    if (ec) return absl::InternalError(absl::StrCat("rename ", dir.string(), ": ", ec.message()));
  } else if (fs::exists(dir, ec)) {
    fs::remove(dir, ec);  // empty (checked above)
    if (ec) return absl::InternalError(absl::StrCat("remove ", dir.string(), ": ", ec.message()));
  }
  fs::rename(staging, dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("rename ", staging.string(), " to ", dir.string(), ": ", ec.message()));
  }
  BERT_RETURN_IF_ERROR(SyncDirectory(parent.string()));
  if (replace) fs::remove_all(old, ec);
  return result;
}

}  // namespace bert::client
