// The safetensors format (Hugging Face): an 8-byte little-endian header length,
// a JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {...}}, then the raw little-endian tensor bytes.
// Stateless free functions; thread-safe.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace bert::engine {

// The file's bytes for `tensors` (contiguous CPU copies are made as needed),
// in the given order, the header padded with spaces to 8 bytes as Hugging Face does.
std::string EncodeSafetensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

// Parses a safetensors file; throws EngineError naming the file and the problem.
std::vector<std::pair<std::string, torch::Tensor>> ReadSafetensors(const std::string& path);

}  // namespace bert::engine
