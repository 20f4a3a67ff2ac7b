#include "agent/artifact_manifest.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace bert::agent {

namespace fs = std::filesystem;

std::string ManifestText(const std::vector<ManifestEntry>& files) {
  std::string text;
  for (const ManifestEntry& f : files) {
    absl::StrAppend(&text, f.sha256, " ", f.size, " ", f.relative_path, "\n");
  }
  return text;
}

absl::StatusOr<LocalArtifact> DescribeLocalArtifact(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    return absl::NotFoundError(absl::StrCat("artifact ", path, ": not found"));
  LocalArtifact out;
  if (fs::is_regular_file(st)) {
    out.size_bytes = static_cast<int64_t>(fs::file_size(path, ec));
    if (ec) return absl::InternalError(absl::StrCat("stat ", path, ": ", ec.message()));
    BERT_ASSIGN_OR_RETURN(out.sha256, Sha256File(path));
    return out;
  }
  if (!fs::is_directory(st)) {
    return absl::InvalidArgumentError(absl::StrCat("artifact ", path, ": not a file or directory"));
  }
  out.is_directory = true;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    ManifestEntry e;
    e.relative_path = fs::relative(it->path(), path).generic_string();
    e.size = static_cast<int64_t>(it->file_size());
    out.files.push_back(std::move(e));
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", path, ": ", ec.message()));
  std::sort(out.files.begin(), out.files.end(), [](const ManifestEntry& a, const ManifestEntry& b) {
    return a.relative_path < b.relative_path;
  });
  for (ManifestEntry& e : out.files) {
    BERT_ASSIGN_OR_RETURN(e.sha256, Sha256File((fs::path(path) / e.relative_path).string()));
    out.size_bytes += e.size;
  }
  out.sha256 = Sha256Hex(ManifestText(out.files));
  return out;
}

absl::Status VerifyLocalArtifact(const std::string& path, const v1::Artifact& expected) {
  BERT_ASSIGN_OR_RETURN(LocalArtifact local, DescribeLocalArtifact(path));
  if (local.is_directory != expected.is_directory()) {
    return absl::DataLossError(absl::StrCat("artifact ", expected.id(), " at ", path,
                                            ": expected a ",
                                            expected.is_directory() ? "directory" : "file"));
  }
  if (expected.size_bytes() != local.size_bytes) {
    return absl::DataLossError(absl::StrCat("artifact ", expected.id(), " at ", path, ": size ",
                                            local.size_bytes, ", expected ",
                                            expected.size_bytes()));
  }
  if (!expected.sha256().empty() && expected.sha256() != local.sha256) {
    return absl::DataLossError(absl::StrCat("artifact ", expected.id(), " at ", path, ": sha256 ",
                                            local.sha256, ", expected ", expected.sha256()));
  }
  return absl::OkStatus();
}

}  // namespace bert::agent
