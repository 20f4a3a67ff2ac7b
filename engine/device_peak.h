// The peak matrix-product FLOP/s of one accelerator, for MFU (model FLOPs
// utilisation: the model's matrix-product FLOP/s over the device's peak).
//
// The peak comes from, in order: the spec's `training.peak_tflops` (the worker
// config's training.peak_flops), this table of common devices looked up by the
// device's name (dense tensor-core peaks from the vendor's data sheets), or a
// measurement on the CPU (trainer.cc). Unknown accelerators report no MFU.
// No libtorch here: the lookup is plain data.
#pragma once

#include <string>
#include <string_view>

namespace bert::engine {

struct DevicePeak {
  const char* name_contains;  // matched against the device's name, e.g. "NVIDIA H100 80GB HBM3"
  double bf16_flops;          // dense bf16 tensor-core peak
  double fp32_flops;          // plain fp32 peak (libtorch leaves TF32 off for matmuls by default)
};

// The table entry for a device name, the most specific first ("H100 PCIe"
// before "H100"); nullptr when the name is not in the table.
const DevicePeak* FindDevicePeak(std::string_view device_name);

// The peak for MFU: `override_flops` when positive, else the table's for
// `device_name` at the precision, else 0 (MFU not reported).
double ResolvePeakFlops(double override_flops, std::string_view device_name, bool bf16);

// The name of CUDA device `index` as the driver reports it ("NVIDIA H200"),
// read through libcuda.so.1 at run time (no CUDA headers needed at build
// time), honouring CUDA_VISIBLE_DEVICES as the runtime does; "" when there is
// no driver or no such device.
std::string CudaDeviceName(int index);

}  // namespace bert::engine
