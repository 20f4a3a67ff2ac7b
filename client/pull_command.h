// bertctl pull: a job's artifacts to this machine (artifact_pull.h's rules).
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace bert::client {

struct PullCommandOptions {
  std::string job_id;
  std::string name = "model";  // model, tokenizer, dataset, tensorboard, checkpoint-<step>, checkpoints
  std::string to;              // empty: ./<job>-<name>
  int64_t limit_rate = 0;      // bytes per second; 0: no limit
  bool plain = false;          // compact lines even on a terminal
};

// Pulls (or, for "checkpoints", lists); Fail()s with commands.h's exit codes.
void RunPull(const PullCommandOptions& options);

void RegisterPullCommand(CLI::App& app);

class BertClient;
// `submit --watch` once the job succeeded: pulls its model to `pull_dir`, or
// when that is empty to `output_dir` (the spec's output.dir, absolute) unless
// the export agent wrote it there (under ClusterInfo.shared_output_root,
// protocol/output_dir.h). "-" or nothing to pull to: nothing is done.
void PullModelAfterWatch(BertClient& client, const std::string& job_id,
                         const std::string& pull_dir, const std::string& output_dir);

}  // namespace bert::client
