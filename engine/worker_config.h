// CONFIG.json of bert-worker's pretrain and export commands
// (docs/worker-protocol.md) -> engine options. Errors name the key.
#pragma once

#include <string>

#include "engine/hf_export.h"
#include "engine/trainer.h"

namespace bert::engine {

// Throws EngineError(kSpecError) naming the file and key on a missing or mistyped value.
PretrainOptions ParsePretrainConfig(const std::string& json_text, const std::string& file_name);
ExportOptions ParseExportConfig(const std::string& json_text, const std::string& file_name);

}  // namespace bert::engine
