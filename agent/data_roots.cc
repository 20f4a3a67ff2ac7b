#include "agent/data_roots.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "protocol/failure_cause.h"

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

bool IsUnder(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

}  // namespace

absl::Status CheckUnderDataRoots(absl::string_view field, const std::string& path,
                                 const std::vector<std::string>& roots) {
  if (roots.empty()) return absl::OkStatus();
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) {
    return protocol::StageFailure(v1::DATA_ERROR,
                                  absl::StrCat(field, ": ", path, ": ", ec.message()));
  }
  for (const std::string& root : roots) {
    const fs::path real_root = fs::weakly_canonical(root, ec);
    if (!ec && IsUnder(real, real_root)) return absl::OkStatus();
  }
  return protocol::StageFailure(
      v1::DATA_ERROR,
      absl::StrCat(field, ": ", path,
                   real.string() == path ? "" : absl::StrCat(" (resolves to ", real.string(), ")"),
                   " is outside this agent's data roots (", absl::StrJoin(roots, ", "),
                   "); inputs are read only under the directories its operator gave with "
                   "--data-root"));
}

absl::StatusOr<std::vector<std::string>> JobDataRoots(const std::vector<std::string>& roots,
                                                      bool allow_spec_dir,
                                                      const std::string& spec_dir,
                                                      const std::string& work_dir) {
  std::vector<std::string> result = roots;
  if (!allow_spec_dir || spec_dir.empty()) return result;
  auto refuse = [&](absl::string_view why) {
    return protocol::StageFailure(
        v1::DATA_ERROR, absl::StrCat("the spec's directory ", spec_dir, " ", why,
                                     ", so it cannot be a data root; submit the spec from a "
                                     "directory of its own, or ask the operator for a "
                                     "--data-root"));
  };
  if (!fs::path(spec_dir).is_absolute()) return refuse("is not an absolute path");
  std::error_code ec;
  const fs::path real = fs::canonical(spec_dir, ec);
  if (ec || !fs::is_directory(real, ec)) return refuse("is not a directory on this host");
  const fs::path real_work = fs::weakly_canonical(work_dir, ec);
  if (ec) return refuse("cannot be compared with the agent's work directory");
  if (IsUnder(real_work, real)) {
    return refuse(absl::StrCat("holds this agent's work directory (", real_work.string(), ")"));
  }
  if (IsUnder(real, real_work)) {
    return refuse(absl::StrCat("lies inside this agent's work directory (", real_work.string(),
                               ")"));
  }
  result.push_back(real.string());
  return result;
}

}  // namespace bert::agent
