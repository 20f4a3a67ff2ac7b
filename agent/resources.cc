#include "agent/resources.h"

#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/subprocess.h"
#include "nlohmann/json.hpp"

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

int CpuCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int64_t MemoryBytes(const std::string& proc_root) {
  std::ifstream in(proc_root + "/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "MemTotal:")) continue;
    int64_t kb = 0;
    std::string rest(absl::StripAsciiWhitespace(absl::StripPrefix(line, "MemTotal:")));
    rest = std::string(absl::StripSuffix(rest, "kB"));
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kb)) return kb * 1024;
  }
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

std::string FindInPath(const std::string& name) {
  const char* path = getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string candidate = std::string(dir) + "/" + name;
    if (!dir.empty() && Executable(candidate)) return candidate;
  }
  return "";
}

// `bert-worker devices` prints {"kind":"cuda","count":2,"name":"..."}.
bool ProbeWorker(const ResourceProbeOptions& o, v1::AgentResources* r) {
  if (o.worker_path.empty() || !Executable(o.worker_path)) return false;
  auto out = RunCommandForOutput({o.worker_path, "devices"}, o.probe_timeout_ms);
  if (!out.ok()) return false;
  for (absl::string_view line : absl::StrSplit(*out, '\n')) {
    auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("kind")) continue;
    const std::string kind = j.value("kind", "");
    const int count = j.value("count", 0);
    if (count <= 0 || (kind != "cuda" && kind != "hpu")) return false;
    r->set_accelerator(kind == "cuda" ? v1::CUDA : v1::HPU);
    r->set_accelerator_count(count);
    r->set_accelerator_name(j.value("name", ""));
    return true;
  }
  return false;
}

bool ProbeNvidia(const ResourceProbeOptions& o, v1::AgentResources* r) {
  std::error_code ec;
  int count = 0;
  std::string name;
  for (const auto& e : fs::directory_iterator(o.proc_root + "/driver/nvidia/gpus", ec)) {
    ++count;
    std::ifstream info(e.path() / "information");
    std::string line;
    while (name.empty() && std::getline(info, line)) {
      if (absl::StartsWith(line, "Model:")) {
        name = std::string(absl::StripAsciiWhitespace(absl::StripPrefix(line, "Model:")));
      }
    }
  }
  if (count == 0) {
    const std::string smi = FindInPath("nvidia-smi");
    if (smi.empty()) return false;
    auto out =
        RunCommandForOutput({smi, "--query-gpu=name", "--format=csv,noheader"}, o.probe_timeout_ms);
    if (!out.ok()) return false;
    for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipWhitespace())) {
      if (name.empty()) name = std::string(absl::StripAsciiWhitespace(line));
      ++count;
    }
  }
  if (count == 0) return false;
  r->set_accelerator(v1::CUDA);
  r->set_accelerator_count(count);
  r->set_accelerator_name(name);
  return true;
}

bool ProbeGaudi(const ResourceProbeOptions& o, v1::AgentResources* r) {
  std::error_code ec;
  int count = 0;
  for (const auto& e : fs::directory_iterator(o.dev_root + "/accel", ec)) {
    const std::string f = e.path().filename().string();
    if (absl::StartsWith(f, "accel") && !absl::StartsWith(f, "accel_controlD")) ++count;
  }
  if (count == 0) {
    const std::string smi = FindInPath("hl-smi");
    if (smi.empty()) return false;
    auto out = RunCommandForOutput({smi, "-Q", "index", "-f", "csv,noheader"}, o.probe_timeout_ms);
    if (!out.ok()) return false;
    for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipWhitespace())) {
      (void)line;
      ++count;
    }
  }
  if (count == 0) return false;
  r->set_accelerator(v1::HPU);
  r->set_accelerator_count(count);
  r->set_accelerator_name("Habana Gaudi");
  return true;
}

}  // namespace

v1::AgentResources DetectResources(const ResourceProbeOptions& options) {
  v1::AgentResources r;
  r.set_cpu_cores(CpuCores());
  r.set_memory_bytes(MemoryBytes(options.proc_root));
  if (ProbeGaudi(options, &r) || ProbeWorker(options, &r) || ProbeNvidia(options, &r)) return r;
  // A CPU host offers one "device": the whole CPU.
  r.set_accelerator(v1::CPU);
  r.set_accelerator_count(1);
  r.set_accelerator_name("cpu");
  return r;
}

std::string DeviceName(v1::AcceleratorKind kind) {
  switch (kind) {
    case v1::CUDA:
      return "cuda";
    case v1::HPU:
      return "hpu";
    default:
      return "cpu";
  }
}

}  // namespace bert::agent
