#include "engine/warm_start.h"

#include <filesystem>
#include <map>

#include "engine/bert_model.h"
#include "engine/checkpoint.h"
#include "engine/engine_error.h"
#include "engine/hf_model_loader.h"

namespace bert::engine {

bool IsCheckpointDir(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(dir + "/trainer_state.json", ec);
}

BertConfig WarmStartConfig(const std::string& from) {
  std::error_code ec;
  if (!std::filesystem::is_directory(from, ec)) {
    throw EngineError(FailureCause::kDataError, "warm start: " + from + " is not a directory");
  }
  return IsCheckpointDir(from) ? ReadCheckpointConfig(from) : ReadHuggingFaceConfig(from);
}

BertConfig WarmStartModelConfig(const std::string& from, const protocol::WorkerModelConfig& given) {
  BertConfig c = WarmStartConfig(from);
  if (given.preset.has_value() && !given.preset->empty()) {
    throw EngineError(FailureCause::kSpecError,
                      "model.preset \"" + *given.preset +
                          "\" cannot be set with init_from: the architecture is " + from + "'s");
  }
  auto same = [&](const char* key, const std::optional<int64_t>& value, int64_t source) {
    if (value.has_value() && *value != source) {
      throw EngineError(FailureCause::kSpecError,
                        std::string("model.") + key + " is " + std::to_string(*value) +
                            " but the warm start's " + from + " has " + std::to_string(source));
    }
  };
  same("hidden_size", given.hidden_size, c.hidden_size);
  same("num_hidden_layers", given.num_hidden_layers, c.num_hidden_layers);
  same("num_attention_heads", given.num_attention_heads, c.num_attention_heads);
  same("intermediate_size", given.intermediate_size, c.intermediate_size);
  same("max_position_embeddings", given.max_position_embeddings, c.max_position_embeddings);
  same("type_vocab_size", given.type_vocab_size, c.type_vocab_size);
  if (given.vocab_size.has_value() && *given.vocab_size > c.vocab_size) {
    throw EngineError(FailureCause::kSpecError, "model.vocab_size " +
                                                    std::to_string(*given.vocab_size) +
                                                    " is larger than the warm start's " + from +
                                                    " (" + std::to_string(c.vocab_size) + ")");
  }
  c.hidden_dropout_prob = given.hidden_dropout_prob.value_or(c.hidden_dropout_prob);
  c.attention_probs_dropout_prob =
      given.attention_probs_dropout_prob.value_or(c.attention_probs_dropout_prob);
  if (const std::string why = c.Validate(); !why.empty())
    throw EngineError(FailureCause::kSpecError, "model." + why);
  return c;
}

void LoadWarmStartWeights(const std::string& from, BertForMaskedLMImpl& model) {
  if (!IsCheckpointDir(from)) {
    LoadHuggingFaceWeights(from, model);
    return;
  }
  std::string why;
  if (!VerifyCheckpoint(from, &why))
    throw EngineError(FailureCause::kArtifactCorrupt, from + ": " + why);
  auto [config, tensors] = ReadCheckpointModel(from);
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : model.NamedParameters()) {
    const auto it = by_name.find(name);
    if (it == by_name.end())
      throw EngineError(FailureCause::kArtifactCorrupt, from + "/model.pt: no tensor " + name);
    if (it->second.sizes() != param.sizes()) {
      throw EngineError(FailureCause::kSpecError,
                        from + "/model.pt: " + name + " has shape " + c10::str(it->second.sizes()) +
                            ", the model needs " + c10::str(param.sizes()));
    }
    param.copy_(it->second);
  }
}

}  // namespace bert::engine
