// What this host offers: CPU cores, memory and accelerators. Detected without
// libtorch: CUDA through `bert-worker devices` (which links libtorch) and
// else /proc/driver/nvidia/gpus or nvidia-smi; Gaudi (HPU) through
// /dev/accel/accel* device nodes or hl-smi.
#pragma once

#include <string>

#include "bert/v1/agent_service.pb.h"

namespace bert::agent {

struct ResourceProbeOptions {
  std::string worker_path;  // bert-worker; empty to skip asking it
  std::string proc_root = "/proc";
  std::string dev_root = "/dev";
  int probe_timeout_ms = 20000;
};

// Never fails: a host without a detected accelerator is kind CPU, count 1.
v1::AgentResources DetectResources(const ResourceProbeOptions& options);

// The device string a worker takes: "cpu", "cuda" or "hpu".
std::string DeviceName(v1::AcceleratorKind kind);

}  // namespace bert::agent
