// Supervises one `bert-worker` child (docs/worker-protocol.md): forwards its
// JSON-line reports to a StageReporter, its stderr as log lines, and stops it
// on cancellation (SIGTERM to its process group, SIGKILL after a grace period);
// a pause (StageReporter::PauseRequested) sends the worker SIGUSR1: it writes a
// checkpoint, reports it, and ends with a PAUSED_BY_USER result.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/stage_reporter.h"

namespace bert::agent {

struct WorkerOptions {
  std::vector<std::string> argv;       // e.g. {"/usr/bin/bert-worker", "pretrain", "--config", p}
  std::vector<std::string> extra_env;  // "NAME=value"
  std::chrono::milliseconds cancel_grace{10000};
  std::chrono::milliseconds poll_interval{100};
};

// Runs the worker to completion. OK when it exits 0 without a failed result;
// otherwise a StageFailure (agent/failure.h) whose cause is the worker's
// `result` line, CANCELLED_BY_USER after a cancel, OUT_OF_MEMORY when it was
// SIGKILLed by someone else (the kernel's OOM killer), or WORKER_CRASHED.
// Blocks the calling thread, which must stay alive while the worker runs.
absl::Status RunWorker(const WorkerOptions& options, StageReporter& reporter);

}  // namespace bert::agent
