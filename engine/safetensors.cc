#include "engine/safetensors.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/engine_error.h"
#include "formats/safetensors_header.h"

namespace bert::engine {
namespace {

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {{torch::kFloat32, "F32"}, {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
                                 {torch::kFloat64, "F64"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
                                 {torch::kInt16, "I16"},   {torch::kInt8, "I8"},     {torch::kUInt8, "U8"},
                                 {torch::kBool, "BOOL"}};

}  // namespace

std::string EncodeSafetensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  std::vector<torch::Tensor> contiguous;
  size_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const char* dtype = nullptr;
    for (const auto& d : kDtypes) if (d.type == t.scalar_type()) dtype = d.name;
    TORCH_CHECK(dtype != nullptr, "safetensors: unsupported dtype for ", name);
    const size_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(t);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += json;
  out.reserve(out.size() + offset);
  for (const torch::Tensor& t : contiguous) {
    out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> ReadSafetensors(const std::string& path) {
  auto bad = [&](const std::string& what) { throw EngineError(FailureCause::kArtifactCorrupt, path + ": " + what); };
  std::ifstream in(path, std::ios::binary);
  if (!in) bad("cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  // Every size and offset is checked (overflow-safe) before a tensor is allocated.
  const formats::Result<formats::SafetensorsHeader> header = formats::ParseSafetensorsHeader(bytes, path);
  if (!header.ok()) throw EngineError(FailureCause::kArtifactCorrupt, header.error().message);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const formats::SafetensorsTensor& info : header->tensors) {
    torch::ScalarType type = torch::kFloat32;
    bool known = false;
    for (const auto& d : kDtypes) if (info.dtype == d.name) { type = d.type; known = true; }
    if (!known) bad(info.name + ": unsupported dtype " + info.dtype);
    torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(type));
    TORCH_CHECK(static_cast<uint64_t>(t.numel()) * t.element_size() == info.end - info.begin);
    if (info.end > info.begin) std::memcpy(t.data_ptr(), bytes.data() + info.begin, info.end - info.begin);
    out.emplace_back(info.name, t);
  }
  return out;
}

}  // namespace bert::engine
