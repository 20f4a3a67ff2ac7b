#include "protocol/artifact_manifest.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace bert::protocol {

namespace fs = std::filesystem;

std::string ManifestLine(const ManifestEntry& file) {
  return absl::StrCat(file.sha256, " ", file.size, " ", file.relative_path, "\n");
}

std::string ManifestText(const std::vector<ManifestEntry>& files) {
  std::string text;
  for (const ManifestEntry& f : files) text += ManifestLine(f);
  return text;
}

namespace {

// Regular files under `dir`, sorted bytewise (std::string compares bytes).
// A symbolic link is never followed, to a file or a directory: a link in an
// output directory must not make its owner hash, upload or serve a file from
// outside it (the manifest's contract leaves links out).
absl::Status ListRegularFiles(const std::string& dir, std::vector<std::string>* files) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code st_ec;
    if (fs::is_regular_file(it->symlink_status(st_ec)) && !st_ec) {
      files->push_back(fs::relative(it->path(), dir).generic_string());
    }
  }
  std::sort(files->begin(), files->end());
  if (ec) return absl::InternalError(absl::StrCat("listing ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> ListManifestFiles(const std::string& dir) {
  std::vector<std::string> files;
  ListRegularFiles(dir, &files).IgnoreError();
  return files;
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
  std::vector<std::string> relative_paths;
  BERT_RETURN_IF_ERROR(ListRegularFiles(path, &relative_paths));
  for (std::string& rel : relative_paths) {
    const std::string file = (fs::path(path) / rel).string();
    ManifestEntry& e = out.files.emplace_back();
    e.relative_path = std::move(rel);
    e.size = static_cast<int64_t>(fs::file_size(file, ec));
    if (ec) return absl::InternalError(absl::StrCat("stat ", file, ": ", ec.message()));
    BERT_ASSIGN_OR_RETURN(e.sha256, Sha256File(file));
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

}  // namespace bert::protocol
