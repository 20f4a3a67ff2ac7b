#include "engine/worker_config.h"

#include "engine/engine_error.h"

namespace bert::engine {
namespace {

template <typename Config>
Config Parse(const std::string& text, const std::string& file_name) {
  Config config;
  std::string error;
  if (!protocol::ParseWorkerConfig(text, file_name, &config, &error)) {
    throw EngineError(FailureCause::kSpecError, error);
  }
  return config;
}

}  // namespace

PretrainOptions ToPretrainOptions(const protocol::WorkerPretrainConfig& config,
                                  const std::string& file_name) {
  PretrainOptions o;
  o.dataset_dir = config.dataset_dir;
  o.output_dir = config.output_dir;
  o.device = config.device;
  o.threads = config.threads;
  o.training = config.training;
  o.distributed = config.distributed;
  o.distributed.backend = protocol::ResolvedBackend(config.distributed, config.device);
  o.initialization = config.model.initialization.value_or(protocol::kModelInitNormal);
  if (!protocol::IsModelInitialization(o.initialization)) {
    throw EngineError(FailureCause::kSpecError,
                      file_name + ": model.initialization: unknown initialization \"" + o.initialization +
                          "\" (\"" + protocol::kModelInitNormal + "\" or \"" +
                          protocol::kModelInitLocalAttention + "\")");
  }

  // Warm start: the architecture is the source's, resolved by the trainer
  // (which reads it only when there is no checkpoint to resume from).
  if (!config.init_from.empty()) {
    o.init_from = config.init_from;
    o.init_model = config.model;
    return o;
  }
  // The sizes: the preset's (bert-base-uncased's without one), then any given.
  const protocol::WorkerModelConfig& m = config.model;
  BertConfig& c = o.model;
  if (const std::string name = m.preset.value_or(""); !name.empty()) {
    const std::optional<BertConfig> preset = PresetConfig(name);
    if (!preset) {
      throw EngineError(FailureCause::kSpecError,
                        file_name + ": model.preset: unknown preset \"" + name + "\"");
    }
    c = *preset;
  }
  c.vocab_size = m.vocab_size.value_or(0);  // 0: from the dataset
  c.hidden_size = m.hidden_size.value_or(c.hidden_size);
  c.num_hidden_layers = m.num_hidden_layers.value_or(c.num_hidden_layers);
  c.num_attention_heads = m.num_attention_heads.value_or(c.num_attention_heads);
  c.intermediate_size = m.intermediate_size.value_or(c.intermediate_size);
  c.max_position_embeddings = m.max_position_embeddings.value_or(c.max_position_embeddings);
  c.type_vocab_size = m.type_vocab_size.value_or(c.type_vocab_size);
  c.hidden_dropout_prob = m.hidden_dropout_prob.value_or(c.hidden_dropout_prob);
  c.attention_probs_dropout_prob =
      m.attention_probs_dropout_prob.value_or(c.attention_probs_dropout_prob);
  return o;
}

ExportOptions ToExportOptions(const protocol::WorkerExportConfig& config) {
  ExportOptions o;
  o.checkpoint_dir = config.checkpoint_dir;
  o.tokenizer_dir = config.tokenizer_dir;
  o.output_dir = config.output_dir;
  return o;
}

PretrainOptions ParsePretrainConfig(const std::string& text, const std::string& file_name) {
  return ToPretrainOptions(Parse<protocol::WorkerPretrainConfig>(text, file_name), file_name);
}

ExportOptions ParseExportConfig(const std::string& text, const std::string& file_name) {
  return ToExportOptions(Parse<protocol::WorkerExportConfig>(text, file_name));
}

}  // namespace bert::engine
