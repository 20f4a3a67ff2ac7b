#include "spec/spec_defaults.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/bert_config.h"
#include "protocol/model_source.h"
#include "protocol/worker_config.h"
#include "spec/did_you_mean.h"

namespace bert::spec {
namespace {

using bert::v1::JobSpec;

// The special tokens of bert-base-uncased, in the order Hugging Face's trainer
// gives them ids 0..4.
const std::vector<std::string>& DefaultSpecialTokens() {
  static const auto* tokens =
      new std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  return *tokens;
}

// "jsonl" when every path names a .jsonl/.json file (compressed or not), else "text".
std::string InferFormat(const bert::v1::SourceSpec& source) {
  if (source.paths().empty()) return "text";
  for (const std::string& path : source.paths()) {
    std::string name = path;
    for (const char* suffix : {".gz", ".zst", ".zstd"}) {
      if (absl::EndsWith(name, suffix)) name.resize(name.size() - std::string(suffix).size());
    }
    if (!absl::EndsWith(name, ".jsonl") && !absl::EndsWith(name, ".json")) return "text";
  }
  return "jsonl";
}

void FillCorpus(const FieldLocations& at, bert::v1::CorpusSpec* corpus) {
  for (int i = 0; i < corpus->sources_size(); ++i) {
    bert::v1::SourceSpec* source = corpus->mutable_sources(i);
    if (source->format().empty()) source->set_format(InferFormat(*source));
    if (source->format() == "jsonl" && source->text_field().empty()) source->set_text_field("text");
    if (source->compression().empty()) source->set_compression("auto");
    if (source->format() == "text" && source->document_separator().empty()) {
      source->set_document_separator("line");
    }
  }
  if (corpus->on_error().empty()) corpus->set_on_error("fail");
  if (!at.Has("corpus.drop_empty")) corpus->set_drop_empty(true);
  if (!at.Has("corpus.shard_size_bytes")) corpus->set_shard_size_bytes(64ll << 20);
}

void FillTokenizer(const FieldLocations& at, const bert::v1::ModelSpec& model,
                   bert::v1::TokenizerSpec* tokenizer) {
  // A warm start keeps its model's vocabulary: a directory's tokenizer becomes
  // tokenizer.from (checked against it in spec_validator), a job's comes from
  // that job (the controller hands it to the pipeline).
  if (!model.from().empty()) {
    if (tokenizer->from().empty() && !bert::protocol::IsJobModelReference(model.from())) {
      tokenizer->set_from(model.from());
    }
    return;
  }
  // With `from`, the loaded tokenizer decides (see ParseJobSpec).
  if (!tokenizer->from().empty()) return;
  if (!at.Has("tokenizer.vocab_size")) tokenizer->set_vocab_size(32000);
  if (!at.Has("tokenizer.lowercase")) tokenizer->set_lowercase(true);
  if (tokenizer->special_tokens().empty() && !at.Has("tokenizer.special_tokens")) {
    for (const std::string& token : DefaultSpecialTokens()) tokenizer->add_special_tokens(token);
  }
}

void FillPreprocess(const FieldLocations& at, bert::v1::PreprocessSpec* preprocess) {
  if (!at.Has("preprocess.max_seq_length")) preprocess->set_max_seq_length(512);
  if (!at.Has("preprocess.shuffle_seed")) preprocess->set_shuffle_seed(34);
  if (!at.Has("preprocess.validation_fraction")) preprocess->set_validation_fraction(0.01);
  if (!at.Has("preprocess.memory_limit_mb")) preprocess->set_memory_limit_mb(2048);
}

void FillModel(const FieldLocations& at, bert::v1::ModelSpec* model, SpecErrorList* errors) {
  // A warm start's architecture is its config.json's: filled when the spec's
  // paths are read (spec_paths), or by bertd from the job it names.
  if (!model->from().empty()) return;
  if (model->preset().empty()) model->set_preset(kDefaultPreset);
  if (model->initialization().empty()) model->set_initialization(bert::protocol::kModelInitNormal);
  std::optional<bert::engine::BertConfig> config = bert::engine::PresetConfig(model->preset());
  if (!config) {
    std::vector<std::string> names;
    for (const auto& preset : bert::engine::kBertPresets) names.emplace_back(preset.name);
    std::string message = absl::StrCat("unknown preset '", model->preset(), "'");
    const std::string suggestion = SuggestKey(model->preset(), names);
    if (!suggestion.empty()) absl::StrAppend(&message, "; did you mean '", suggestion, "'?");
    absl::StrAppend(&message, " (known: ", absl::StrJoin(names, ", "), ")");
    errors->Add("model.preset", message);
    config = bert::engine::BertConfig{};
  }
  if (!at.Has("model.hidden_size")) model->set_hidden_size(config->hidden_size);
  if (!at.Has("model.num_hidden_layers")) model->set_num_hidden_layers(config->num_hidden_layers);
  if (!at.Has("model.num_attention_heads")) {
    model->set_num_attention_heads(config->num_attention_heads);
  }
  if (!at.Has("model.intermediate_size")) model->set_intermediate_size(config->intermediate_size);
  if (!at.Has("model.max_position_embeddings")) {
    model->set_max_position_embeddings(config->max_position_embeddings);
  }
  if (!at.Has("model.type_vocab_size")) model->set_type_vocab_size(config->type_vocab_size);
  if (!at.Has("model.hidden_dropout_prob")) {
    model->set_hidden_dropout_prob(config->hidden_dropout_prob);
  }
  if (!at.Has("model.attention_probs_dropout_prob")) {
    model->set_attention_probs_dropout_prob(config->attention_probs_dropout_prob);
  }
}

// The training defaults are the worker protocol's (protocol/worker_config.h),
// so a spec that sets nothing trains exactly as a CONFIG.json that sets nothing.
void FillTraining(const FieldLocations& at, const bert::v1::PreprocessSpec& preprocess,
                  bert::v1::TrainingSpec* training) {
  const bert::protocol::WorkerTrainingConfig defaults;
  if (!at.Has("training.max_steps")) training->set_max_steps(defaults.max_steps);
  if (!at.Has("training.per_device_batch_size")) {
    training->set_per_device_batch_size(static_cast<int32_t>(defaults.per_device_batch_size));
  }
  if (!at.Has("training.learning_rate")) training->set_learning_rate(defaults.learning_rate);
  if (!at.Has("training.warmup_steps")) training->set_warmup_steps(defaults.warmup_steps);
  if (!at.Has("training.warmup_ratio")) training->set_warmup_ratio(defaults.warmup_ratio);
  if (!at.Has("training.weight_decay")) training->set_weight_decay(defaults.weight_decay);
  if (!at.Has("training.gradient_accumulation_steps")) {
    training->set_gradient_accumulation_steps(
        static_cast<int32_t>(defaults.gradient_accumulation_steps));
  }
  if (!at.Has("training.max_grad_norm")) training->set_max_grad_norm(defaults.max_grad_norm);
  if (!at.Has("training.mlm_probability")) training->set_mlm_probability(defaults.mlm_probability);
  if (training->precision().empty()) training->set_precision(defaults.precision);
  if (!at.Has("training.save_steps")) training->set_save_steps(defaults.save_steps);
  if (!at.Has("training.save_total_limit")) {
    training->set_save_total_limit(static_cast<int32_t>(defaults.save_total_limit));
  }
  if (!at.Has("training.logging_steps")) training->set_logging_steps(defaults.logging_steps);
  // Without a validation split there is nothing to evaluate on.
  if (!at.Has("training.eval_steps")) {
    training->set_eval_steps(preprocess.validation_fraction() > 0 ? defaults.eval_steps : 0);
  }
  if (!at.Has("training.seed")) training->set_seed(defaults.seed);
}

void FillResources(bert::v1::ResourcesSpec* resources, const FieldLocations& at) {
  if (resources->prep_pool().empty()) resources->set_prep_pool("cpu");
  if (resources->train_pool().empty()) resources->set_train_pool("train");
  if (resources->accelerator().empty()) resources->set_accelerator("cpu");
  if (!at.Has("resources.devices")) resources->set_devices(1);
  if (!at.Has("resources.hosts")) resources->set_hosts(1);
  if (!at.Has("resources.prep_shards")) resources->set_prep_shards(1);
  if (!at.Has("resources.max_attempts")) resources->set_max_attempts(3);
}

}  // namespace

void FillDefaults(const FieldLocations& locations, JobSpec* spec, SpecErrorList* errors) {
  FillCorpus(locations, spec->mutable_corpus());
  FillTokenizer(locations, spec->model(), spec->mutable_tokenizer());
  FillPreprocess(locations, spec->mutable_preprocess());
  FillModel(locations, spec->mutable_model(), errors);
  FillTraining(locations, spec->preprocess(), spec->mutable_training());
  FillResources(spec->mutable_resources(), locations);
}

}  // namespace bert::spec
