// The operator's --data-root directories, applied to the inputs a job spec
// names directly (tokenizer.from, preprocess.from_dataset); corpus sources are
// checked file by file by data/input_plan.h's InputPolicy.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bert::agent {

// OK when `roots` is empty or `path` resolves (symlinks followed, ".."
// removed) to a file or directory under one of them; else a DATA_ERROR
// StageFailure naming `field`, the path and the rule.
absl::Status CheckUnderDataRoots(absl::string_view field, const std::string& path,
                                 const std::vector<std::string>& roots);

// The roots one job's inputs are read under: the operator's `roots`, plus,
// when the agent allows it (--spec-dir-root, the embedded single-user
// default), the directory the job's spec was submitted from. That directory
// is named by the submitter, so it must be an existing absolute directory
// that neither holds nor lies inside `work_dir` (the agent's own and every
// other job's files, and, for bertd's embedded agent, the controller's data
// directory around it); otherwise a DATA_ERROR naming it and the rule.
// Empty result: unconfined (no roots and no spec directory allowed).
absl::StatusOr<std::vector<std::string>> JobDataRoots(const std::vector<std::string>& roots,
                                                      bool allow_spec_dir,
                                                      const std::string& spec_dir,
                                                      const std::string& work_dir);

}  // namespace bert::agent
