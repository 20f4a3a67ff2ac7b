#include "engine/precision.h"

#include <dlfcn.h>

#include <fstream>
#include <sstream>
#include <string>

namespace bert::engine {
namespace {

// The value of a "key<TAB>: value" line of /proc/cpuinfo, if `line` is one for `key`.
bool ValueOf(std::string_view line, std::string_view key, std::string_view* value) {
  if (line.substr(0, key.size()) != key) return false;
  const size_t colon = line.find(':', key.size());
  if (colon == std::string_view::npos) return false;
  // Only blanks may stand between the key and the colon ("flags\t\t: ...").
  if (line.substr(key.size(), colon - key.size()).find_first_not_of(" \t") != std::string_view::npos) {
    return false;
  }
  std::string_view v = line.substr(colon + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  *value = v;
  return true;
}

}  // namespace

std::string CpuFeatures::Summary() const {
  std::string have, lack;
  auto add = [&](bool present, const char* name) {
    std::string& list = present ? have : lack;
    if (!list.empty()) list += ' ';
    list += name;
  };
  add(avx2, "avx2");
  add(avx512f, "avx512f");
  add(avx512_bf16, "avx512_bf16");
  add(amx_bf16, "amx_bf16");
  std::string out = model_name.empty() ? "cpu" : model_name;
  out += "; ";
  out += have.empty() ? "none of avx2 avx512f avx512_bf16 amx_bf16" : have;
  if (!have.empty() && !lack.empty()) out += ", no " + lack;
  return out;
}

CpuFeatures ParseCpuInfo(std::string_view cpuinfo) {
  CpuFeatures features;
  bool have_flags = false, have_model = false;
  while (!cpuinfo.empty() && !(have_flags && have_model)) {
    const size_t eol = cpuinfo.find('\n');
    const std::string_view line = cpuinfo.substr(0, eol);
    cpuinfo.remove_prefix(eol == std::string_view::npos ? cpuinfo.size() : eol + 1);
    std::string_view value;
    if (!have_model && ValueOf(line, "model name", &value)) {
      features.model_name = std::string(value);
      have_model = true;
    } else if (!have_flags && ValueOf(line, "flags", &value)) {
      have_flags = true;
      std::istringstream words{std::string(value)};
      std::string flag;
      while (words >> flag) {
        if (flag == "avx2") features.avx2 = true;
        if (flag == "avx512f") features.avx512f = true;
        if (flag == "avx512_bf16") features.avx512_bf16 = true;
        if (flag == "amx_bf16") features.amx_bf16 = true;
      }
    }
  }
  return features;
}

CpuFeatures ReadCpuFeatures() {
  std::ifstream in("/proc/cpuinfo");
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  return ParseCpuInfo(text.str());
}

int CudaComputeCapabilityMajor(int index) {
  // The driver API's C entry points (cuda.h), declared here: CUresult is an
  // int-sized enum (0 = CUDA_SUCCESS), CUdevice an int, and attribute 75 is
  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR.
  using CuInit = int (*)(unsigned int);
  using CuDeviceGet = int (*)(int*, int);
  using CuDeviceGetAttribute = int (*)(int*, int, int);
  constexpr int kComputeCapabilityMajor = 75;
  static void* const driver = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (driver == nullptr || index < 0) return 0;
  const auto init = reinterpret_cast<CuInit>(::dlsym(driver, "cuInit"));
  const auto get = reinterpret_cast<CuDeviceGet>(::dlsym(driver, "cuDeviceGet"));
  const auto attribute = reinterpret_cast<CuDeviceGetAttribute>(::dlsym(driver, "cuDeviceGetAttribute"));
  if (init == nullptr || get == nullptr || attribute == nullptr || init(0) != 0) return 0;
  int device = 0, major = 0;
  if (get(&device, index) != 0) return 0;
  if (attribute(&major, kComputeCapabilityMajor, device) != 0) return 0;
  return major;
}

PrecisionChoice ChoosePrecision(std::string_view requested, std::string_view device_kind,
                                const CpuFeatures& cpu, int cuda_capability_major) {
  if (requested != "auto") return {std::string(requested), ""};
  auto choose = [](const char* precision, const std::string& why) {
    return PrecisionChoice{precision, std::string("precision auto → ") + precision + " (" + why + ")"};
  };
  if (device_kind == "cuda") {
    if (cuda_capability_major >= 8) {
      return choose("bf16", "cuda compute capability " + std::to_string(cuda_capability_major) +
                                ".x has bf16 tensor cores");
    }
    if (cuda_capability_major > 0) {
      return choose("fp32", "cuda compute capability " + std::to_string(cuda_capability_major) +
                                ".x has no bf16 tensor cores (8.0 and above do)");
    }
    return choose("fp32", "the cuda compute capability is unknown");
  }
  if (device_kind == "hpu") return choose("bf16", "hpu matrix engines compute bf16 natively");
  if (cpu.amx_bf16) return choose("bf16", "cpu has amx_bf16");
  if (cpu.avx512_bf16) return choose("bf16", "cpu has avx512_bf16");
  return choose("fp32", "cpu has neither avx512_bf16 nor amx_bf16: bf16 would be emulated, slower than fp32");
}

}  // namespace bert::engine
