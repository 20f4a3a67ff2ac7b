// The operator's --data-root directories, applied to the inputs a job spec
// names directly (tokenizer.from, preprocess.from_dataset); corpus sources are
// checked file by file by data/input_plan.h's InputPolicy.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace bert::agent {

// OK when `roots` is empty or `path` resolves (symlinks followed, ".."
// removed) to a file or directory under one of them; else a DATA_ERROR
// StageFailure naming `field`, the path and the rule.
absl::Status CheckUnderDataRoots(absl::string_view field, const std::string& path,
                                 const std::vector<std::string>& roots);

}  // namespace bert::agent
