// Which worker runs the stages that need libtorch (pretrain, export): the
// engine's C++ front, bert-worker, or its Python front, bert-worker-py
// (engine/python, docs/gaudi.md), which speak the same protocol.
//
// A host property, chosen by the operator with `bert-agent --worker-front`,
// not by job specs: which PyTorch a host has (a C++ libtorch, or Intel Gaudi's,
// which exists only as a Python package with its bridge) is the host's business.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace bert::agent {

struct WorkerFrontOptions {
  std::string front = "auto";  // "auto", "native" or "python"
  std::string native_path;     // bert-worker
  std::string python_path;     // bert-worker-py
};

// True for "auto", "native" and "python".
bool IsWorkerFront(std::string_view front);

// The worker a stage on `device` ("cpu", "cuda", "hpu") runs: "auto" picks the
// Python front for "hpu" and bert-worker otherwise. InvalidArgument for an
// unknown front.
absl::StatusOr<std::string> StageWorkerPath(const WorkerFrontOptions& options,
                                            std::string_view device);

}  // namespace bert::agent
