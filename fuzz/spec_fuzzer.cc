// Fuzzes the job spec parser (spec::ParseJobSpec) as bertd runs it on a
// submitted spec, without touching the file system (check_paths = false).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "spec/job_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bert::spec::ParseOptions options;
  options.base_dir = "/nonexistent-fuzz-base";
  options.check_paths = false;
  bert::spec::ParseResult result = bert::spec::ParseJobSpec(
      std::string_view(reinterpret_cast<const char*>(data), size), options);
  if (!result.ok()) (void)bert::spec::FormatErrors("fuzz.yaml", result.errors);
  return 0;
}
