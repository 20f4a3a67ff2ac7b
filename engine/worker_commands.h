// The worker protocol's `pretrain` and `export` commands (docs/worker-protocol.md),
// written once for both fronts of the engine: bert-worker (worker_main.cc) and
// the Python worker (engine/python), so that both read the same CONFIG.json,
// report the same JSON lines and exit with the same statuses.
// No libtorch in this header.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <string>

#include "engine/trainer.h"

namespace bert::engine {

// Exit statuses: 0 success; a failure's cause is on its `result` line.
inline constexpr int kWorkerExitFailure = 1;
inline constexpr int kWorkerExitUsage = 2;
inline constexpr int kWorkerExitCancelled = 143;  // 128 + SIGTERM
// Paused (SIGUSR1): a checkpoint at the step reached is written, then the
// `result` line says PAUSED_BY_USER.
inline constexpr int kWorkerExitPaused = 138;  // 128 + SIGUSR1

// What a front sets up once the config is read, before it is validated (the
// Python worker imports Habana's bridge and creates the process group here).
// May throw; EngineError keeps its cause, anything else is INTERNAL.
using PrepareRuntime = std::function<PretrainRuntime(const PretrainOptions&)>;

// Reads CONFIG.json at `config_path`, trains (or resumes) and reports on `out`
// until a `result` line; `cancelled` (set by the SIGTERM handler) stops it at a
// step boundary; `paused` (set by the SIGUSR1 handler; may be null) stops it
// there after a checkpoint at that step. Returns the exit status.
int RunPretrainCommand(const std::string& config_path, std::FILE* out, const std::atomic<bool>* cancelled,
                       const PrepareRuntime& prepare = {}, const std::atomic<bool>* paused = nullptr);

// Exports a checkpoint as a Hugging Face model directory; reports and returns likewise.
int RunExportCommand(const std::string& config_path, std::FILE* out, const std::atomic<bool>* cancelled);

}  // namespace bert::engine
