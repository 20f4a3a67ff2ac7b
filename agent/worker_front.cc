#include "agent/worker_front.h"

#include "absl/strings/str_cat.h"

namespace bert::agent {

bool IsWorkerFront(std::string_view front) {
  return front == "auto" || front == "native" || front == "python";
}

absl::StatusOr<std::string> StageWorkerPath(const WorkerFrontOptions& o, std::string_view device) {
  if (!IsWorkerFront(o.front)) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker front \"", o.front, "\": expected auto, native or python"));
  }
  const bool python = o.front == "python" || (o.front == "auto" && device == "hpu");
  return python ? o.python_path : o.native_path;
}

}  // namespace bert::agent
