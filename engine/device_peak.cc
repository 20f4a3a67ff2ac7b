#include "engine/device_peak.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>

namespace bert::engine {
namespace {

// Dense peaks (no structured sparsity) from NVIDIA's data sheets, per GPU.
// Most specific names first: the first entry whose text the name contains wins.
constexpr double kT = 1e12;
constexpr DevicePeak kDevicePeaks[] = {
    {"H100 PCIe", 756 * kT, 51 * kT},
    {"H100 NVL", 835.5 * kT, 60 * kT},
    {"H200 NVL", 835.5 * kT, 60 * kT},
    {"GH200", 989.4 * kT, 67 * kT},
    {"H100", 989.4 * kT, 67 * kT},  // SXM5 ("NVIDIA H100 80GB HBM3")
    {"H200", 989.4 * kT, 67 * kT},  // SXM ("NVIDIA H200")
    {"A100", 312 * kT, 19.5 * kT},  // SXM4 and PCIe, 40 and 80 GB
};

bool ContainsIgnoringCase(std::string_view text, std::string_view part) {
  const auto it = std::search(text.begin(), text.end(), part.begin(), part.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != text.end();
}

}  // namespace

const DevicePeak* FindDevicePeak(std::string_view device_name) {
  if (device_name.empty()) return nullptr;
  for (const DevicePeak& peak : kDevicePeaks) {
    if (ContainsIgnoringCase(device_name, peak.name_contains)) return &peak;
  }
  return nullptr;
}

double ResolvePeakFlops(double override_flops, std::string_view device_name, bool bf16) {
  if (override_flops > 0) return override_flops;
  const DevicePeak* peak = FindDevicePeak(device_name);
  if (peak == nullptr) return 0;
  return bf16 ? peak->bf16_flops : peak->fp32_flops;
}

std::string CudaDeviceName(int index) {
  // The driver API's C entry points (cuda.h), declared here: CUresult is an
  // int-sized enum (0 = CUDA_SUCCESS) and CUdevice an int.
  using CuInit = int (*)(unsigned int);
  using CuDeviceGet = int (*)(int*, int);
  using CuDeviceGetName = int (*)(char*, int, int);
  static void* const driver = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (driver == nullptr || index < 0) return "";
  const auto init = reinterpret_cast<CuInit>(::dlsym(driver, "cuInit"));
  const auto get = reinterpret_cast<CuDeviceGet>(::dlsym(driver, "cuDeviceGet"));
  const auto get_name = reinterpret_cast<CuDeviceGetName>(::dlsym(driver, "cuDeviceGetName"));
  if (init == nullptr || get == nullptr || get_name == nullptr || init(0) != 0) return "";
  int device = 0;
  if (get(&device, index) != 0) return "";
  char name[256] = {};
  if (get_name(name, static_cast<int>(sizeof name) - 1, device) != 0) return "";
  return name;
}

}  // namespace bert::engine
