// A Hugging Face BERT model directory (config.json + model.safetensors: the
// engine's own export, or a downloaded bert-base-uncased) read back into a
// BertForMaskedLM: for predict, and for a warm start (engine/warm_start.h).
#pragma once

#include <string>

#include "engine/bert_config.h"
#include "engine/bert_model.h"

namespace bert::engine {

// DIR/config.json as the engine's sizes (formats/hf_bert_config.h checks it).
// Throws EngineError: kDataError for a missing or malformed file, kSpecError
// for a model the engine cannot build (not BERT, another activation).
BertConfig ReadHuggingFaceConfig(const std::string& model_dir);

// Copies DIR/model.safetensors into every parameter of `model`, converting the
// dtype (F16/BF16 files load into fp32 parameters). Names are the Hugging Face
// BertForMaskedLM's; also accepted: the older LayerNorm names ("gamma",
// "beta"), the head's bias stored as "cls.predictions.decoder.bias", and
// extra tensors (the pooler, the next-sentence head, the tied decoder weight,
// position_ids), which are ignored. Throws EngineError(kDataError) naming the
// file when a tensor is missing or has the wrong shape.
void LoadHuggingFaceWeights(const std::string& model_dir, BertForMaskedLMImpl& model);

// The model in eval mode on the CPU.
BertForMaskedLM LoadHuggingFaceModel(const std::string& model_dir);

}  // namespace bert::engine
