// `bert-agent run-stage STAGE`: runs one stage of a job spec on this machine,
// without a controller, for debugging. Outputs of earlier run-stage calls with
// the same --work-dir are the inputs (recorded in <work-dir>/artifacts.json).
#pragma once

#include <atomic>
#include <string>
#include <vector>

namespace bert::agent {

struct RunStageOptions {
  std::string stage;      // prepare, tokenizer, preprocess, pretrain, export
  std::string spec_path;  // job.yaml
  std::string work_dir;
  int shard = 0;
  int shards = 1;
  std::string worker_path;
  std::string worker_front = "auto";  // agent/worker_front.h
  std::string python_worker_path;     // bert-worker-py
  int threads = 0;  // 0 = all cores
  std::string device = "cpu";
  // pretrain: ranks to run on this host as one gang (one per device), meeting
  // on a free loopback port.
  int local_ranks = 1;
  // Corpus inputs are read only under these (--data-root); empty: anywhere.
  std::vector<std::string> data_roots;
};

// Returns the process exit code: 0 ok, 1 stage failed, 2 bad usage or spec.
// `cancel` becomes true on SIGINT/SIGTERM.
int RunStageCommand(const RunStageOptions& options, const std::atomic<bool>& cancel);

}  // namespace bert::agent
