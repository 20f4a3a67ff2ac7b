// CONFIG.json of bert-worker's pretrain and export commands -> engine options.
// The schema (keys, types, defaults, strictness) is protocol/worker_config.h;
// this file only maps it onto the engine's option structs.
#pragma once

#include <string>

#include "engine/hf_export.h"
#include "engine/trainer.h"
#include "protocol/worker_config.h"

namespace bert::engine {

// The options the engine trains with: the model sizes resolved from the preset
// (vocab_size 0 when absent: taken from the dataset), the backend resolved from
// the device. Throws EngineError(kSpecError) for an unknown preset.
PretrainOptions ToPretrainOptions(const protocol::WorkerPretrainConfig& config,
                                  const std::string& file_name);
ExportOptions ToExportOptions(const protocol::WorkerExportConfig& config);

// Parses the file's text and maps it. Throws EngineError(kSpecError) naming the
// file and the key path on invalid JSON, an unknown or misspelt key, a value of
// the wrong type or a missing required key.
PretrainOptions ParsePretrainConfig(const std::string& json_text, const std::string& file_name);
ExportOptions ParseExportConfig(const std::string& json_text, const std::string& file_name);

}  // namespace bert::engine
