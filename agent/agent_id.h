// The agent's id, stable across restarts: --id when given, else the one
// persisted in the work directory, else "<hostname>-<pools>" (then persisted).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace bert::agent {

absl::StatusOr<std::string> LoadOrCreateAgentId(const std::string& work_dir,
                                                const std::string& flag_id,
                                                const std::vector<std::string>& pools);

std::string Hostname();

}  // namespace bert::agent
