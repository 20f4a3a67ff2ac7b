// Fuzzes the safetensors header parser (formats::ParseSafetensorsHeader, which
// the engine's ReadSafetensors calls before it allocates a tensor) and checks
// its promise: every tensor's bytes lie inside the file and match its shape.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "formats/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  auto header = bert::formats::ParseSafetensorsHeader(file, "fuzz.safetensors");
  if (!header.ok()) return 0;
  std::vector<char> copy;
  for (const bert::formats::SafetensorsTensor& t : header->tensors) {
    if (t.begin < header->data_start || t.end < t.begin || t.end > size) std::abort();
    if (t.end - t.begin != t.elements * t.element_bytes) std::abort();
    copy.resize(t.end - t.begin);
    if (!copy.empty())
      std::memcpy(copy.data(), data + t.begin, copy.size());  // ASan checks the range
  }
  return 0;
}
