// Warm start: the weights a new pre-training run begins from instead of a
// random initialisation (the job spec's model.from). The source is either a
// Hugging Face BERT directory (config.json + model.safetensors: a downloaded
// bert-base-uncased, or the engine's own export) or a checkpoint-STEP
// directory of another run. Only the model is taken: the run starts at step 0
// with a fresh optimizer, schedule and data order. No libtorch in this header.
#pragma once

#include <string>

#include "engine/bert_config.h"
#include "protocol/worker_config.h"

namespace bert::engine {

struct BertForMaskedLMImpl;  // engine/bert_model.h

// True when `dir` is a checkpoint directory (it has trainer_state.json),
// false for a Hugging Face model directory.
bool IsCheckpointDir(const std::string& dir);

// The architecture of the source: its config.json (Hugging Face), or the
// checkpoint's model config. Throws EngineError naming the file.
BertConfig WarmStartConfig(const std::string& from);

// WarmStartConfig(from) with the CONFIG.json's "model" part applied: a size it
// names must equal the source's (kSpecError naming the key and both values;
// vocab_size may be smaller: the dataset's), a preset is refused, the
// dropouts replace the source's.
BertConfig WarmStartModelConfig(const std::string& from, const protocol::WorkerModelConfig& given);

// Copies the source's weights into `model`, whose config must be
// WarmStartConfig(from)'s. A checkpoint is
// verified first (kArtifactCorrupt when it does not). Throws EngineError.
void LoadWarmStartWeights(const std::string& from, BertForMaskedLMImpl& model);

}  // namespace bert::engine
