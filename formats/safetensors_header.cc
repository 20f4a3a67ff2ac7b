#include "formats/safetensors_header.h"

#include <limits>

#include "nlohmann/json.hpp"

namespace bert::formats {
namespace {

using nlohmann::json;

Error Malformed(const std::string& where, const std::string& field, const std::string& what) {
  return Error{ErrorCode::kMalformed, where + ": " + field + ": " + what};
}

// A non-negative integer, or false.
bool ToUint(const json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

Result<SafetensorsTensor> ParseTensor(const std::string& name, const json& info,
                                      uint64_t data_bytes, const std::string& where) {
  const std::string field = "tensor '" + name.substr(0, 64) + "'";
  if (!info.is_object()) return Malformed(where, field, "is not an object");
  SafetensorsTensor t;
  t.name = name;
  const auto dtype = info.find("dtype");
  if (dtype == info.end() || !dtype->is_string())
    return Malformed(where, field + ".dtype", "missing or not a string");
  t.dtype = dtype->get<std::string>();
  t.element_bytes = SafetensorsDtypeBytes(t.dtype);
  if (t.element_bytes == 0) {
    return Error{ErrorCode::kUnsupported,
                 where + ": " + field + ".dtype: '" + t.dtype.substr(0, 32) + "' is not supported"};
  }
  const auto shape = info.find("shape");
  if (shape == info.end() || !shape->is_array())
    return Malformed(where, field + ".shape", "missing or not an array");
  if (shape->size() > kMaxSafetensorsRank) {
    return Malformed(where, field + ".shape",
                     "has more than " + std::to_string(kMaxSafetensorsRank) + " dimensions");
  }
  t.elements = 1;
  for (const json& d : *shape) {
    uint64_t dim = 0;
    if (!ToUint(d, &dim) || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return Malformed(where, field + ".shape", "a dimension is not a non-negative integer");
    if (__builtin_mul_overflow(t.elements, dim, &t.elements))
      return Malformed(where, field + ".shape", "the element count overflows");
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(t.elements, t.element_bytes, &bytes))
    return Malformed(where, field + ".shape", "the byte size overflows");
  const auto offsets = info.find("data_offsets");
  uint64_t begin = 0, end = 0;
  if (offsets == info.end() || !offsets->is_array() || offsets->size() != 2 ||
      !ToUint((*offsets)[0], &begin) || !ToUint((*offsets)[1], &end)) {
    return Malformed(where, field + ".data_offsets", "missing or not [begin, end]");
  }
  if (end < begin) return Malformed(where, field + ".data_offsets", "end is before begin");
  if (end - begin != bytes) {
    return Malformed(where, field + ".data_offsets",
                     std::to_string(end - begin) + " bytes, but the shape and dtype need " +
                         std::to_string(bytes));
  }
  if (end > data_bytes) {
    return Error{ErrorCode::kCorrupt, where + ": " + field + ".data_offsets: end " +
                                          std::to_string(end) + " is past the data's " +
                                          std::to_string(data_bytes) + " bytes (truncated?)"};
  }
  t.begin = begin;
  t.end = end;
  return t;
}

}  // namespace

uint64_t SafetensorsDtypeBytes(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

Result<SafetensorsHeader> ParseSafetensorsHeader(std::string_view file, const std::string& where) {
  if (file.size() < 8) {
    return Error{ErrorCode::kMalformed, where + ": shorter than the 8-byte header length"};
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(file[i])) << (8 * i);
  if (n > kMaxSafetensorsHeaderBytes) {
    return Malformed(where, "header length",
                     std::to_string(n) + " is over the limit of " +
                         std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  if (n > file.size() - 8) {
    return Error{ErrorCode::kCorrupt, where + ": header length " + std::to_string(n) +
                                          " exceeds the file (" + std::to_string(file.size()) +
                                          " bytes)"};
  }
  const std::string_view text = file.substr(8, n);
  const json header = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return Malformed(where, "header", "not valid JSON");
  if (!header.is_object()) return Malformed(where, "header", "not a JSON object");
  SafetensorsHeader out;
  out.data_start = 8 + n;
  const uint64_t data_bytes = file.size() - out.data_start;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) return Malformed(where, "__metadata__", "is not an object");
      continue;
    }
    Result<SafetensorsTensor> t = ParseTensor(name, info, data_bytes, where);
    if (!t.ok()) return t.error();
    t->begin += out.data_start;  // <= file.size(): no overflow
    t->end += out.data_start;
    out.tensors.push_back(std::move(t).value());
  }
  return out;
}

}  // namespace bert::formats
