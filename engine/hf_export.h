// Export of a training checkpoint as a Hugging Face model directory that
// BertForMaskedLM.from_pretrained and AutoTokenizer.from_pretrained load:
// config.json, model.safetensors, vocab.txt, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json. Each file is written to a
// temporary name, fsynced and renamed. No libtorch in this header.
#pragma once

#include <cstdint>
#include <string>

namespace bert::engine {

struct ExportOptions {
  std::string checkpoint_dir;  // a checkpoint-STEP directory, or a directory holding them
                               // (directly or under checkpoints/): the newest valid one
  std::string tokenizer_dir;   // holds tokenizer.json and vocab.txt
  std::string output_dir;
};

struct ExportResult {
  std::string checkpoint;  // the checkpoint exported
  int64_t step = 0;
};

// Throws EngineError (kArtifactCorrupt for a checkpoint that fails to verify,
// kDataError for missing tokenizer files).
ExportResult ExportHuggingFace(const ExportOptions& options);

}  // namespace bert::engine
