#include "server/artifact_admission.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "protocol/artifact_ids.h"
#include "protocol/stage_names.h"
#include "server/artifact_store.h"
#include "server/job_model.h"

namespace bert::server {
namespace fs = std::filesystem;
namespace {

constexpr absl::string_view kFileScheme = "file://";
constexpr absl::string_view kBertdScheme = "bertd://";

// True when `path` is `root` or lies under it, compared by whole parts.
bool Under(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing '/'
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

}  // namespace

ArtifactAdmission::ArtifactAdmission(std::vector<std::string> roots) {
  for (const std::string& root : roots) {
    std::string normal = fs::path(root).lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    roots_.push_back(std::move(normal));
  }
}

absl::StatusOr<ArtifactAdmission::Location> ArtifactAdmission::Contain(const std::string& what,
                                                                       const std::string& path,
                                                                       const std::string& job_id,
                                                                       v1::StageKind stage) const {
  const fs::path p(path);
  if (!p.is_absolute()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", path, "' is not an absolute path"));
  }
  for (const fs::path& part : p) {
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": '", path, "' has a '.' or '..' part"));
    }
  }
  for (const std::string& root : roots_) {
    const fs::path scope = fs::path(root) / job_id / protocol::StageName(stage);
    if (!Under(p.lexically_normal(), scope) || p.lexically_normal() == scope) continue;
    // Resolve the links that exist: the file must still be inside the scope.
    std::error_code ec;
    const fs::path real_scope = fs::weakly_canonical(scope, ec);
    const fs::path real = ec ? fs::path() : fs::weakly_canonical(p, ec);
    if (ec || !Under(real, real_scope)) {
      return absl::PermissionDeniedError(absl::StrCat(what, ": '", path, "' leads out of ",
                                                      scope.string(), " through a symbolic link"));
    }
    return Location{root, p.lexically_normal().lexically_relative(root).string()};
  }
  return absl::PermissionDeniedError(absl::StrCat(
      what, ": '", path, "' is not under <artifact root>/", job_id, "/", protocol::StageName(stage),
      "/ of the controller (roots: ", roots_.empty() ? std::string("none") : roots_.front(),
      roots_.size() > 1 ? ", ..." : "", ")"));
}

absl::Status ArtifactAdmission::CheckUpload(const v1::AssignmentRef& ref,
                                            const std::string& artifact_id) const {
  const std::string what = absl::StrCat("artifact '", artifact_id, "'");
  if (absl::Status s = ArtifactStore::CheckId(artifact_id); !s.ok()) return s;
  std::optional<protocol::ParsedArtifactId> parsed = protocol::ParseArtifactId(artifact_id);
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a '<job>/<stage>/...' artifact id"));
  }
  if (parsed->job_id != ref.job_id() || parsed->stage != ref.stage()) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " does not belong to ", RefString(ref),
                     " (an agent reports only its own piece's artifacts)"));
  }
  return absl::OkStatus();
}

absl::Status ArtifactAdmission::CheckReported(const v1::AssignmentRef& ref,
                                              const v1::Artifact& artifact, bool checkpoint) const {
  const std::string what =
      absl::StrCat(checkpoint ? "checkpoint" : "output", " '",
                   artifact.id().empty() ? artifact.name() : artifact.id(), "'");
  if (checkpoint && ref.stage() != v1::PRETRAIN) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, ": only pretrain reports checkpoints, not ", RefString(ref)));
  }
  if (!artifact.name().empty()) {
    // The name becomes the id's last part when the id is left to the controller.
    if (absl::Status s = ArtifactStore::CheckId(artifact.name(), "name");
        !s.ok() || absl::StrContains(artifact.name(), '/')) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": name must be one [A-Za-z0-9._-] part"));
    }
  }
  if (!artifact.id().empty()) {
    if (absl::Status s = CheckUpload(ref, artifact.id()); !s.ok()) return s;
  }
  absl::string_view uri = artifact.uri();
  if (uri.empty()) return absl::OkStatus();  // refused or filled in later
  if (absl::ConsumePrefix(&uri, kBertdScheme)) {
    if (artifact.id().empty() || uri != artifact.id()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": uri '", artifact.uri(), "' must be bertd://<its id>"));
    }
    return absl::OkStatus();
  }
  if (absl::ConsumePrefix(&uri, kFileScheme)) {
    return Contain(what, std::string(uri), ref.job_id(), ref.stage()).status();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": uri '", artifact.uri(), "' is neither bertd:// nor file://"));
}

absl::StatusOr<ArtifactAdmission::Location> ArtifactAdmission::Locate(
    const v1::Artifact& artifact) const {
  const std::string what = absl::StrCat("artifact '", artifact.id(), "'");
  if (absl::Status s = ArtifactStore::CheckId(artifact.id()); !s.ok()) return s;
  absl::string_view uri = artifact.uri();
  if (!absl::ConsumePrefix(&uri, kFileScheme)) {
    if (roots_.empty()) return absl::FailedPreconditionError("no artifact root");
    return Location{roots_.front(), artifact.id()};
  }
  std::optional<protocol::ParsedArtifactId> parsed = protocol::ParseArtifactId(artifact.id());
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a '<job>/<stage>/...' artifact id"));
  }
  return Contain(what, std::string(uri), parsed->job_id, parsed->stage);
}

}  // namespace bert::server
