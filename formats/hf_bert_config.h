// HfBertConfig: config.json of a Hugging Face BERT model directory, parsed and
// checked against what the engine builds (warm start, model.from).
//
// One reader for both sides: the spec library checks model.from with it
// (bertctl, bertd) and the engine builds the model from it (bert-worker), so a
// config the spec accepts is one the engine loads. The file is untrusted
// input: every key the engine relies on is checked for presence, type and
// range, and every error names the file and the key.
//
// What the engine supports (engine/bert_model.h): model_type "bert" (or, in
// older files without model_type, architectures naming a Bert* class),
// hidden_act "gelu", position_embedding_type "absolute".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "formats/result.h"

namespace bert::formats {

inline constexpr char kHfConfigFile[] = "config.json";
inline constexpr char kHfWeightsFile[] = "model.safetensors";
// config.json is read only up to this size (bert-base-uncased's is 570 bytes).
inline constexpr uint64_t kMaxHfConfigBytes = uint64_t{1} << 20;

// The sizes of engine::BertConfig, under the same (Hugging Face) names.
struct HfBertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 0;
  double hidden_dropout_prob = 0.1;           // absent: Hugging Face's default
  double attention_probs_dropout_prob = 0.1;  // absent: Hugging Face's default
  double layer_norm_eps = 1e-12;              // absent: Hugging Face's default
  double initializer_range = 0.02;
  int64_t pad_token_id = 0;
};

// Parses config.json's text; `file_name` prefixes every error
// ("DIR/config.json: model_type: ..."). kUnsupported for a model the engine
// cannot build (another model_type, activation or position embedding),
// kMalformed for invalid JSON or a missing or ill-typed key.
Result<HfBertConfig> ParseHfBertConfig(std::string_view text, std::string_view file_name);

// Reads and parses DIR/config.json (at most kMaxHfConfigBytes, a regular file).
Result<HfBertConfig> ReadHfBertConfig(const std::string& model_dir);

}  // namespace bert::formats
