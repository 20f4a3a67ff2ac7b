#include "agent/agent_id.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"

namespace bert::agent {

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

absl::StatusOr<std::string> LoadOrCreateAgentId(const std::string& work_dir,
                                                const std::string& flag_id,
                                                const std::vector<std::string>& pools) {
  std::error_code ec;
  std::filesystem::create_directories(work_dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("create work dir ", work_dir, ": ", ec.message()));
  const std::string path = work_dir + "/agent-id";
  std::string id = flag_id;
  if (id.empty()) {
    if (auto stored = ReadFile(path); stored.ok()) {
      id = std::string(absl::StripAsciiWhitespace(*stored));
    }
  }
  if (id.empty()) id = absl::StrCat(Hostname(), "-", absl::StrJoin(pools, "+"));
  if (auto stored = ReadFile(path); !stored.ok() || absl::StripAsciiWhitespace(*stored) != id) {
    if (absl::Status s = WriteFileAtomically(path, id + "\n"); !s.ok()) return s;
  }
  return id;
}

}  // namespace bert::agent
