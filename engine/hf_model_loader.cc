#include "engine/hf_model_loader.h"

#include <map>

#include "engine/engine_error.h"
#include "engine/safetensors.h"
#include "formats/hf_bert_config.h"

namespace bert::engine {
namespace {

// The names a tensor of the engine's model may have in a Hugging Face file,
// the engine's own first.
std::vector<std::string> NamesInFile(const std::string& name) {
  std::vector<std::string> names = {name};
  auto replace_suffix = [&](const std::string& from, const std::string& to) {
    if (name.size() > from.size() && name.ends_with(from) &&
        name.find("LayerNorm") != std::string::npos) {
      names.push_back(name.substr(0, name.size() - from.size()) + to);
    }
  };
  replace_suffix(".weight", ".gamma");  // checkpoints converted from TensorFlow (bert-base-uncased)
  replace_suffix(".bias", ".beta");
  if (name == "cls.predictions.bias") names.emplace_back("cls.predictions.decoder.bias");
  return names;
}

}  // namespace

BertConfig ReadHuggingFaceConfig(const std::string& dir) {
  formats::Result<formats::HfBertConfig> read = formats::ReadHfBertConfig(dir);
  if (!read.ok()) {
    throw EngineError(read.error().code == formats::ErrorCode::kUnsupported
                          ? FailureCause::kSpecError
                          : FailureCause::kDataError,
                      read.error().message);
  }
  const formats::HfBertConfig& h = *read;
  BertConfig c;
  c.vocab_size = h.vocab_size;
  c.hidden_size = h.hidden_size;
  c.num_hidden_layers = h.num_hidden_layers;
  c.num_attention_heads = h.num_attention_heads;
  c.intermediate_size = h.intermediate_size;
  c.max_position_embeddings = h.max_position_embeddings;
  c.type_vocab_size = h.type_vocab_size;
  c.hidden_dropout_prob = h.hidden_dropout_prob;
  c.attention_probs_dropout_prob = h.attention_probs_dropout_prob;
  c.layer_norm_eps = h.layer_norm_eps;
  c.initializer_range = h.initializer_range;
  c.pad_token_id = h.pad_token_id;
  if (const std::string why = c.Validate(); !why.empty()) {
    throw EngineError(FailureCause::kDataError, dir + "/config.json: " + why);
  }
  return c;
}

void LoadHuggingFaceWeights(const std::string& dir, BertForMaskedLMImpl& model) {
  const std::string file = dir + "/" + formats::kHfWeightsFile;
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [name, t] : ReadSafetensors(file)) tensors[name] = std::move(t);
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : model.NamedParameters()) {
    const torch::Tensor* found = nullptr;
    for (const std::string& candidate : NamesInFile(name)) {
      if (auto it = tensors.find(candidate); it != tensors.end()) {
        found = &it->second;
        break;
      }
    }
    if (found == nullptr) {
      throw EngineError(
          FailureCause::kDataError,
          file + ": no tensor " + name +
              (name.starts_with("cls.") ? " (a BertForMaskedLM or BertForPreTraining model has the "
                                          "masked-LM head; this one may be a bare BertModel)"
                                        : ""));
    }
    if (found->sizes() != param.sizes()) {
      throw EngineError(FailureCause::kDataError,
                        file + ": " + name + " has shape " + c10::str(found->sizes()) +
                            ", the config.json's model needs " + c10::str(param.sizes()));
    }
    if (!found->is_floating_point()) {
      throw EngineError(FailureCause::kDataError,
                        file + ": " + name + " is not a floating-point tensor");
    }
    param.copy_(*found);
  }
}

BertForMaskedLM LoadHuggingFaceModel(const std::string& dir) {
  BertForMaskedLM model(ReadHuggingFaceConfig(dir));
  LoadHuggingFaceWeights(dir, *model);
  model->eval();
  return model;
}

}  // namespace bert::engine
