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

}  // namespace bert::agent
