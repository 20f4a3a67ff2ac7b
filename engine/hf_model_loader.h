// LoadHuggingFaceModel: an exported Hugging Face model directory
// (config.json + model.safetensors) back into a BertForMaskedLM, for predict.
#pragma once

#include <string>

#include "engine/bert_model.h"

namespace bert::engine {

// The model in eval mode on the CPU. Throws EngineError(kDataError) naming the
// file when a tensor is missing or has the wrong shape.
BertForMaskedLM LoadHuggingFaceModel(const std::string& model_dir);

}  // namespace bert::engine
