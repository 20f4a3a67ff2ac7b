// BertConfig: the sizes of a BERT model, and the named presets.
//
// Plain C++ with no libtorch include, so that the spec library can resolve
// presets without linking libtorch. Field names follow Hugging Face's
// BertConfig (and bert.v1.ModelSpec), so the export writes them as they are.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bert::engine {

struct BertConfig {
  int64_t vocab_size = 30522;  // from the tokenizer
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;  // 4 * hidden_size for every preset
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double layer_norm_eps = 1e-12;
  double initializer_range = 0.02;  // std of the normal initialisation
  int64_t pad_token_id = 0;

  // Empty when the sizes are consistent; otherwise what is wrong, naming the field.
  std::string Validate() const {
    if (vocab_size < 1) return "vocab_size must be at least 1";
    if (hidden_size < 1) return "hidden_size must be at least 1";
    if (num_hidden_layers < 1) return "num_hidden_layers must be at least 1";
    if (num_attention_heads < 1) return "num_attention_heads must be at least 1";
    if (hidden_size % num_attention_heads != 0) {
      return "hidden_size (" + std::to_string(hidden_size) +
             ") must be a multiple of num_attention_heads (" +
             std::to_string(num_attention_heads) + ")";
    }
    if (intermediate_size < 1) return "intermediate_size must be at least 1";
    if (max_position_embeddings < 1) return "max_position_embeddings must be at least 1";
    if (type_vocab_size < 1) return "type_vocab_size must be at least 1";
    if (hidden_dropout_prob < 0 || hidden_dropout_prob >= 1) {
      return "hidden_dropout_prob must be in [0, 1)";
    }
    if (attention_probs_dropout_prob < 0 || attention_probs_dropout_prob >= 1) {
      return "attention_probs_dropout_prob must be in [0, 1)";
    }
    return {};
  }
};

// One named preset: the layer count, hidden size and heads of the published models.
struct BertPreset {
  std::string_view name;
  int64_t num_hidden_layers;
  int64_t hidden_size;
  int64_t num_attention_heads;
};

inline constexpr std::array<BertPreset, 6> kBertPresets = {{
    {"bert-tiny", 2, 128, 2},
    {"bert-mini", 4, 256, 4},
    {"bert-small", 4, 512, 8},
    {"bert-medium", 8, 512, 8},
    {"bert-base-uncased", 12, 768, 12},
    {"bert-large-uncased", 24, 1024, 16},
}};

// The preset's config (intermediate 4 * hidden, 512 positions, 2 token types,
// dropout 0.1), with `vocab_size`; nullopt for an unknown name.
inline std::optional<BertConfig> PresetConfig(std::string_view name, int64_t vocab_size = 30522) {
  for (const BertPreset& preset : kBertPresets) {
    if (preset.name != name) continue;
    BertConfig config;
    config.vocab_size = vocab_size;
    config.num_hidden_layers = preset.num_hidden_layers;
    config.hidden_size = preset.hidden_size;
    config.num_attention_heads = preset.num_attention_heads;
    config.intermediate_size = 4 * preset.hidden_size;
    return config;
  }
  return std::nullopt;
}

}  // namespace bert::engine
