// Publishes an exported model into the spec's output.dir without ever
// deleting or overwriting what the export did not create.
//
// The rule: output.dir must not exist, be an empty directory, or hold a
// previous export of the same job (recognised by its marker file, kExportMarker,
// which holds the job id). The model is copied to a marked temporary sibling
// (".<name>.bertd-tmp-<job>"), synced and renamed into place; a previous
// export of the same job is renamed aside first and removed once the new one
// is in place. Anything else is refused before a byte is written.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace bert::agent {

// The marker file an export leaves in output.dir; its content is the job id.
inline constexpr char kExportMarker[] = ".bertd-export";

// OK when `out_dir` may receive job `job_id`'s export; else a SPEC_ERROR
// StageFailure naming the path and the rule. Reads nothing but the marker.
absl::Status CheckExportTarget(const std::string& out_dir, const std::string& job_id);

// Copies `model_dir` to `out_dir` by the rule above. Failures are StageFailures:
// SPEC_ERROR for a refused target, RESOURCE_EXHAUSTED when the disk is full
// (ENOSPC, EFBIG, EDQUOT), else INTERNAL; none leaves a partial export at `out_dir`.
absl::Status PublishExport(const std::string& model_dir, const std::string& out_dir,
                           const std::string& job_id);

}  // namespace bert::agent
