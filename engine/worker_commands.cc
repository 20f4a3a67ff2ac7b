#include "engine/worker_commands.h"

#include <fstream>
#include <new>
#include <sstream>

#include "engine/engine_error.h"
#include "engine/hf_export.h"
#include "engine/worker_config.h"
#include "engine/worker_reporter.h"

namespace bert::engine {
namespace {

std::string ReadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw EngineError(FailureCause::kSpecError, path + ": cannot open the config");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `work`, turning any exception into a `result` line and an exit status.
template <typename Work>
int Guarded(WorkerReporter& reporter, Work work) {
  try {
    return work();
  } catch (const EngineError& e) {
    reporter.Result(false, FailureCauseName(e.cause()), e.what());
  } catch (const std::bad_alloc&) {
    reporter.Result(false, "OUT_OF_MEMORY", "out of memory");
  } catch (const std::exception& e) {  // c10::Error included: libtorch's own failures
    std::string message = e.what();
    // c10::Error appends a C++ backtrace after the first line; the report keeps the cause.
    if (const size_t eol = message.find("\nException raised from"); eol != std::string::npos) message.resize(eol);
    const bool oom = message.find("out of memory") != std::string::npos;
    reporter.Result(false, oom ? "OUT_OF_MEMORY" : "INTERNAL", message);
  }
  return kWorkerExitFailure;
}

}  // namespace

int RunPretrainCommand(const std::string& config_path, std::FILE* out, const std::atomic<bool>* cancelled,
                       const PrepareRuntime& prepare, const std::atomic<bool>* paused) {
  WorkerReporter reporter(out, cancelled, paused);
  return Guarded(reporter, [&] {
    const PretrainOptions options = ParsePretrainConfig(ReadConfig(config_path), config_path);
    reporter.set_is_primary(options.distributed.rank == 0);
    const PretrainRuntime runtime = prepare ? prepare(options) : PretrainRuntime{};
    ValidatePretrainOptions(options);
    if (options.distributed.rank == 0) reporter.EnableTensorBoard(options.output_dir + "/runs");
    const PretrainResult result = Pretrain(options, reporter, runtime);
    if (result.cancelled) {
      reporter.Result(false, "CANCELLED_BY_USER", "stopped by SIGTERM at step " + std::to_string(result.steps_done));
      return kWorkerExitCancelled;
    }
    if (result.paused) {
      reporter.Result(false, "PAUSED_BY_USER",
                      "paused at step " + std::to_string(result.steps_done) + "; checkpoint-" +
                          std::to_string(result.steps_done) + " holds the run");
      return kWorkerExitPaused;
    }
    reporter.Result(true, "", "trained to step " + std::to_string(result.steps_done));
    return 0;
  });
}

int RunExportCommand(const std::string& config_path, std::FILE* out, const std::atomic<bool>* cancelled) {
  WorkerReporter reporter(out, cancelled);
  return Guarded(reporter, [&] {
    const ExportOptions options = ParseExportConfig(ReadConfig(config_path), config_path);
    const ExportResult result = ExportHuggingFace(options);
    reporter.OnLog("info", "exported " + result.checkpoint + " to " + options.output_dir);
    reporter.Result(true, "", "exported step " + std::to_string(result.step));
    return 0;
  });
}

}  // namespace bert::engine
