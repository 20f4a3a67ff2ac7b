// Where a job's exported model goes (the spec's output.dir), decided the same
// way by bertd (which tells the export agent to write it) and bertctl (which
// otherwise pulls the model there when `submit --watch` sees the job succeed).
//
// output.dir is a directory on the submitting machine, unless the operator
// declared a shared output root (bertd --shared-output-root, reported in
// ClusterInfo.shared_output_root) and output.dir lies under it: then the export
// agent writes the model there itself.
#pragma once

#include <string>

namespace bert::protocol {

// True when `output_dir` is `shared_output_root` or lies under it, both taken
// as absolute paths compared lexically ("." and ".." parts resolved, no
// symbolic links followed). False when either is empty or relative.
bool ExportWritesOutputDir(const std::string& output_dir, const std::string& shared_output_root);

}  // namespace bert::protocol
