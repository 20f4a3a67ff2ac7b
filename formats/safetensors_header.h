// SafetensorsHeader: the parsed and checked header of a safetensors file
// (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {...}}, then the tensors' bytes, offsets relative to 8 + N.
//
// The file is untrusted input. ParseSafetensorsHeader checks, with
// overflow-safe arithmetic, that the header fits the file, that every shape's
// element count times its dtype's size is exactly end - begin, and that every
// tensor's bytes lie inside the file; errors name the file and the field.
// Standard library only (the engine builds tensors from the result).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "formats/result.h"

namespace bert::formats {

// Hugging Face's own reader refuses headers over 100 MB.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{100} << 20;
// Bounds a tensor's rank (safetensors has no limit; libtorch's dims are int64_t).
inline constexpr size_t kMaxSafetensorsRank = 64;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  uint64_t element_bytes = 0;  // the dtype's size
  std::vector<int64_t> shape;  // each dimension >= 0
  uint64_t elements = 0;       // the product of shape (1 for a scalar)
  uint64_t begin = 0;          // [begin, end): absolute byte offsets in the file
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t data_start = 0;                 // 8 + the header length
  std::vector<SafetensorsTensor> tensors;  // in the header's key order (sorted by name)
};

// The size of a dtype's element, or 0 for a dtype this reader does not know.
uint64_t SafetensorsDtypeBytes(std::string_view dtype);

// Parses and checks the header of `file` (the whole file's bytes); `where`
// (the path) prefixes every error. kMalformed for a broken header, kCorrupt
// when offsets do not fit the file, kUnsupported for an unknown dtype.
Result<SafetensorsHeader> ParseSafetensorsHeader(std::string_view file, const std::string& where);

}  // namespace bert::formats
