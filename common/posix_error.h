// absl::Status from errno, with the operation and path that failed.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace bert {

// PosixError("open", "/data/x", ENOENT) -> NotFound("open /data/x: No such file or directory").
absl::Status PosixError(std::string_view op, std::string_view path, int err);

}  // namespace bert
