// bertd_engine: the training engine as a Python extension module, for the
// Python worker (bert_worker.py, docs/gaudi.md). The worker protocol itself,
// CONFIG.json, the JSON-line reports and the exit statuses, is bert-worker's
// C++ (engine/worker_commands.h); Python lends only what it alone can make.
//
//   bertd_engine.catch_sigterm()                SIGTERM: stop at the next step boundary;
//                                               SIGUSR1: checkpoint there, then stop (a pause)
//   bertd_engine.pretrain(config, prepare, report_fd) -> exit status
//   bertd_engine.export(config, report_fd) -> exit status
//   bertd_engine.SpecError                      raised by `prepare`: the config cannot run here
//
// `prepare(settings)` is called once the config is read, with a dict: device,
// rank, world_size, local_rank, backend (resolved), master_addr, master_port,
// local_addr, timeout_seconds. It returns a dict with any of: "process_group" (a
// torch.distributed ProcessGroup whose rank and size are the config's; the
// engine's collectives go through it), "after_backward" and
// "after_optimizer_step" (callables without arguments, e.g. Habana's mark_step).
//
// The GIL is released while the engine trains; the engine takes it only to
// call those callables, whose exceptions fail the run (INTERNAL, or
// SPEC_ERROR for SpecError) with their message.
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/utils/pybind.h>  // pybind11, with c10::intrusive_ptr as a holder

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/distributed.h"
#include "engine/engine_error.h"
#include "engine/worker_commands.h"

namespace py = pybind11;

namespace bert::engine {
namespace {

std::atomic<bool> g_cancelled{false};

void OnSigterm(int) { g_cancelled.store(true); }

std::atomic<bool> g_paused{false};

void OnSigusr1(int) { g_paused.store(true); }

// bertd_engine.SpecError; set when the module is initialised.
PyObject* g_spec_error = nullptr;

// The Python exception `e` (GIL held) as the engine's: SpecError keeps its
// cause, anything else is INTERNAL; the message names `where`.
[[noreturn]] void Rethrow(py::error_already_set& e, const std::string& where) {
  const std::string message = py::str(e.value()).cast<std::string>();
  if (g_spec_error != nullptr && e.matches(g_spec_error)) throw EngineError(FailureCause::kSpecError, message);
  throw std::runtime_error(where + ": " + std::string(py::str(e.type().attr("__name__"))) + ": " + message);
}

// A callable kept alive by the caller (GIL held), called from the training thread.
std::function<void()> Hook(const py::object& fn, const std::string& name) {
  if (fn.is_none()) return {};
  if (!PyCallable_Check(fn.ptr())) throw EngineError(FailureCause::kInternal, "prepare: " + name + " is not callable");
  return [&fn, name] {
    py::gil_scoped_acquire gil;
    try {
      fn();
    } catch (py::error_already_set& e) {
      Rethrow(e, name);
    }
  };
}

// A FILE* of its own on `fd` (a duplicate, closed after the command).
struct ReportStream {
  explicit ReportStream(int fd) : file(fdopen(dup(fd), "w")) {
    if (file == nullptr) throw std::runtime_error("bertd_engine: cannot open report_fd " + std::to_string(fd));
  }
  ~ReportStream() { std::fclose(file); }
  std::FILE* file;
};

int PyPretrain(const std::string& config_path, const py::object& prepare, int report_fd) {
  ReportStream out(report_fd);
  // Filled by `prepare` with the GIL held; outlive the run, released here with the GIL.
  py::object after_backward = py::none(), after_optimizer_step = py::none();
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  PrepareRuntime prepare_runtime;
  if (!prepare.is_none()) {
    prepare_runtime = [&](const PretrainOptions& options) {
      py::gil_scoped_acquire gil;
      const DistributedOptions& d = options.distributed;
      py::dict settings;
      settings["device"] = options.device;
      settings["rank"] = d.rank;
      settings["world_size"] = d.world_size;
      settings["local_rank"] = d.local_rank;
      settings["backend"] = d.backend;
      settings["master_addr"] = d.master_addr;
      settings["master_port"] = d.master_port;
      settings["local_addr"] = d.local_addr;
      settings["timeout_seconds"] = d.timeout_seconds;
      py::dict lent;
      try {
        lent = py::dict(prepare(settings));
        if (lent.contains("process_group") && !lent["process_group"].is_none()) {
          group = lent["process_group"].cast<c10::intrusive_ptr<c10d::ProcessGroup>>();
        }
        if (lent.contains("after_backward")) after_backward = lent["after_backward"];
        if (lent.contains("after_optimizer_step")) after_optimizer_step = lent["after_optimizer_step"];
      } catch (py::error_already_set& e) {
        Rethrow(e, "prepare");
      } catch (const py::cast_error& e) {
        throw EngineError(FailureCause::kInternal,
                          std::string("prepare: process_group is not a torch.distributed ProcessGroup: ") + e.what());
      }
      PretrainRuntime runtime;
      if (group) {
        runtime.join_world = [&group](const DistributedOptions& o, const c10::Device& device) {
          return Distributed::Adopt(group, o, device);
        };
      }
      runtime.after_backward = Hook(after_backward, "after_backward");
      runtime.after_optimizer_step = Hook(after_optimizer_step, "after_optimizer_step");
      return runtime;
    };
  }
  py::gil_scoped_release no_gil;
  return RunPretrainCommand(config_path, out.file, &g_cancelled, prepare_runtime, &g_paused);
}

int PyExport(const std::string& config_path, int report_fd) {
  ReportStream out(report_fd);
  py::gil_scoped_release no_gil;
  return RunExportCommand(config_path, out.file, &g_cancelled);
}

}  // namespace
}  // namespace bert::engine

PYBIND11_MODULE(bertd_engine, m) {
  namespace engine = bert::engine;
  m.doc() = "bertd's BERT pre-training engine (engine/), driven by bert-worker-py";
  py::module_::import("torch.distributed");  // registers ProcessGroup with pybind11
  static py::exception<engine::EngineError> spec_error(m, "SpecError", PyExc_ValueError);
  engine::g_spec_error = spec_error.ptr();
  m.def("catch_sigterm",
        [] {
          std::signal(SIGTERM, engine::OnSigterm);
          std::signal(SIGUSR1, engine::OnSigusr1);
        },
        "SIGTERM stops training at the next step boundary (exit status 143), and SIGUSR1 "
        "after a checkpoint there (exit status 138, a pause), as in bert-worker");
  m.def("pretrain", &engine::PyPretrain, py::arg("config"), py::arg("prepare") = py::none(),
        py::arg("report_fd") = 1, "pretrain --config CONFIG: trains, reporting on report_fd; returns the exit status");
  m.def("export", &engine::PyExport, py::arg("config"), py::arg("report_fd") = 1,
        "export --config CONFIG: writes a Hugging Face model directory; returns the exit status");
  m.attr("EXIT_CANCELLED") = engine::kWorkerExitCancelled;
}
