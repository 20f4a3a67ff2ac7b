// Precision "auto": bf16 where the device multiplies bf16 matrices natively,
// fp32 elsewhere. The one rule, applied by the worker on the device it trains
// on (trainer.cc) and reported as a log line of the job's events, e.g.
//   precision auto → bf16 (cpu has avx512_bf16)
//
// - CPU: bf16 when /proc/cpuinfo's flags name avx512_bf16 or amx_bf16 (oneDNN
//   then runs bf16 products in hardware, about twice the fp32 rate); without
//   them libtorch emulates bf16 with fp32 instructions and conversions, slower
//   than fp32 itself.
// - CUDA: bf16 on compute capability 8.0 and above (Ampere: bf16 tensor cores).
// - HPU (Gaudi): bf16, which its matrix engines compute natively.
//
// No libtorch here: the decision is plain data, tested with fake cpuinfo text
// (tests/engine/precision_test.cc).
#pragma once

#include <string>
#include <string_view>

namespace bert::engine {

// The CPU features that decide the precision and explain the engine's speed.
struct CpuFeatures {
  std::string model_name;  // "model name" of the first processor; "" when unknown
  bool avx2 = false;
  bool avx512f = false;
  bool avx512_bf16 = false;  // VDPBF16PS: bf16 dot products on AVX-512 units
  bool amx_bf16 = false;     // AMX tiles: bf16 matrix products

  bool NativeBf16() const { return avx512_bf16 || amx_bf16; }
  // "Intel(R) Xeon(R) Processor; avx2 avx512f avx512_bf16, no amx_bf16".
  std::string Summary() const;
};

// The features named by the first "flags" line (and the first "model name")
// of /proc/cpuinfo's text. Text without such lines gives no features.
CpuFeatures ParseCpuInfo(std::string_view cpuinfo);

// This machine's features, from /proc/cpuinfo; no features when unreadable.
CpuFeatures ReadCpuFeatures();

// The major compute capability of CUDA device `index` (8 on an A100, 9 on an
// H100), read through libcuda.so.1 at run time; 0 when there is no driver or
// no such device.
int CudaComputeCapabilityMajor(int index);

struct PrecisionChoice {
  std::string precision;  // "fp32" or "bf16"
  std::string reason;     // for "auto": the log line saying what was chosen and why; else ""
};

// The precision to train in. `requested` is the spec's training.precision
// ("fp32", "bf16" or "auto"; anything else is returned as it is, for the
// caller's validation to refuse). `device_kind` is "cpu", "cuda" or "hpu";
// `cpu` matters on "cpu", `cuda_capability_major` (0: unknown) on "cuda".
PrecisionChoice ChoosePrecision(std::string_view requested, std::string_view device_kind,
                                const CpuFeatures& cpu, int cuda_capability_major);

}  // namespace bert::engine
