#include "spec/spec_validator.h"

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "protocol/model_source.h"
#include "protocol/worker_config.h"

namespace bert::spec {
namespace {

using bert::v1::JobSpec;

// Checks one field at a time; `at` tells which fields the YAML set.
class Checker {
 public:
  Checker(const FieldLocations& at, SpecErrorList* errors) : at_(at), errors_(errors) {}

  void AtLeast(const std::string& field, int64_t value, int64_t min) {
    if (value < min) Error(field, absl::StrCat("must be at least ", min, ", got ", value));
  }
  void Between(const std::string& field, int64_t value, int64_t min, int64_t max) {
    if (value < min || value > max) {
      Error(field, absl::StrCat("must be between ", min, " and ", max, ", got ", value));
    }
  }
  // [min, max) when !inclusive_max, else [min, max].
  void Fraction(const std::string& field, double value, double min, double max,
                bool inclusive_max) {
    if (value < min || value > max || (!inclusive_max && value == max)) {
      Error(field, absl::StrCat("must be in [", min, ", ", max, inclusive_max ? "]" : ")", ", got ",
                                value));
    }
  }
  void OneOf(const std::string& field, const std::string& value,
             const std::vector<std::string>& allowed) {
    for (const std::string& a : allowed) {
      if (value == a) return;
    }
    Error(field,
          absl::StrCat("must be one of ", absl::StrJoin(allowed, ", "), "; got '", value, "'"));
  }
  void Error(const std::string& field, const std::string& message) { errors_->Add(field, message); }
  bool Has(const std::string& field) const { return at_.Has(field); }

 private:
  const FieldLocations& at_;
  SpecErrorList* errors_;
};

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

void CheckJob(const JobSpec& spec, Checker& check) {
  if (!check.Has("name")) {
    check.Error("name", "missing required field");
  } else if (!ValidName(spec.name())) {
    check.Error("name", "must be 1-128 characters of letters, digits, '-', '_' or '.'");
  }
  check.Between("priority", spec.priority(), -1000, 1000);
  for (const auto& [key, value] : spec.labels()) {
    if (!ValidName(key)) {
      check.Error(absl::StrCat("labels.", key),
                  "label keys must be 1-128 characters of letters, digits, '-', '_' or '.'");
    }
    if (value.size() > 256) check.Error(absl::StrCat("labels.", key), "longer than 256 characters");
  }
}

void CheckCorpus(const JobSpec& spec, Checker& check) {
  const bert::v1::CorpusSpec& corpus = spec.corpus();
  const bool from_dataset = !spec.preprocess().from_dataset().empty();
  if (from_dataset) {
    if (corpus.sources_size() > 0) {
      check.Error("corpus.sources", "not used when preprocess.from_dataset is set; remove one");
    }
    return;
  }
  if (corpus.sources_size() == 0) {
    check.Error("corpus.sources",
                "missing required field: at least one source (or preprocess.from_dataset)");
  }
  for (int i = 0; i < corpus.sources_size(); ++i) {
    const bert::v1::SourceSpec& source = corpus.sources(i);
    const std::string at = absl::StrCat("corpus.sources[", i, "]");
    if (source.paths().empty()) check.Error(at + ".paths", "missing required field");
    for (int j = 0; j < source.paths_size(); ++j) {
      if (source.paths(j).empty()) check.Error(absl::StrCat(at, ".paths[", j, "]"), "empty path");
    }
    check.OneOf(at + ".format", source.format(), {"text", "jsonl"});
    check.OneOf(at + ".compression", source.compression(), {"auto", "none", "gzip", "zstd"});
    if (source.format() == "jsonl") {
      if (check.Has(at + ".document_separator")) {
        check.Error(at + ".document_separator", "only applies to format 'text'");
      }
    } else if (source.format() == "text") {
      if (check.Has(at + ".text_field")) {
        check.Error(at + ".text_field", "only applies to format 'jsonl'");
      }
      check.OneOf(at + ".document_separator", source.document_separator(), {"line", "blank_line"});
    }
  }
  check.OneOf("corpus.on_error", corpus.on_error(), {"fail", "skip"});
  check.AtLeast("corpus.min_chars", corpus.min_chars(), 0);
  check.AtLeast("corpus.shard_size_bytes", corpus.shard_size_bytes(), 4096);
}

// With model.from the model's tokenizer is the job's: nothing is trained.
void CheckWarmStartTokenizer(const JobSpec& spec, Checker& check) {
  const std::string& from = spec.model().from();
  for (const char* field :
       {"vocab_size", "lowercase", "special_tokens", "min_frequency", "limit_alphabet"}) {
    const std::string path = absl::StrCat("tokenizer.", field);
    if (check.Has(path)) {
      check.Error(path, "cannot be set with model.from: a warm start keeps the model's tokenizer");
    }
  }
  const std::string& tokenizer = spec.tokenizer().from();
  if (tokenizer.empty()) return;
  if (bert::protocol::IsJobModelReference(from)) {
    check.Error("tokenizer.from", absl::StrCat("cannot be set with model.from '", from,
                                               "': that job's tokenizer is used"));
  } else if (tokenizer != from && std::filesystem::path(tokenizer).parent_path() != from) {
    check.Error("tokenizer.from",
                absl::StrCat("'", tokenizer, "' is not model.from's tokenizer: a warm start keeps the "
                             "model's vocabulary (remove tokenizer.from, or name a file in '", from, "')"));
  }
}

void CheckTokenizer(const JobSpec& spec, Checker& check) {
  const bert::v1::TokenizerSpec& tokenizer = spec.tokenizer();
  if (!spec.model().from().empty()) {
    CheckWarmStartTokenizer(spec, check);
    return;
  }
  if (!tokenizer.from().empty()) {
    for (const char* field :
         {"vocab_size", "lowercase", "special_tokens", "min_frequency", "limit_alphabet"}) {
      const std::string path = absl::StrCat("tokenizer.", field);
      if (check.Has(path)) {
        check.Error(path,
                    "cannot be set together with tokenizer.from (the loaded tokenizer "
                    "decides); remove one");
      }
    }
    return;
  }
  if (!spec.preprocess().from_dataset().empty()) {
    check.Error("tokenizer.from",
                "missing: preprocess.from_dataset needs the tokenizer the dataset was built with");
    return;
  }
  const int special = tokenizer.special_tokens_size();
  std::set<std::string> seen;
  for (int i = 0; i < special; ++i) {
    const std::string& token = tokenizer.special_tokens(i);
    const std::string at = absl::StrCat("tokenizer.special_tokens[", i, "]");
    if (token.empty()) check.Error(at, "empty token");
    if (!seen.insert(token).second) check.Error(at, absl::StrCat("duplicate token '", token, "'"));
  }
  std::vector<std::string> missing;
  for (const char* required : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    if (seen.count(required) == 0) missing.emplace_back(required);
  }
  if (!missing.empty()) {
    check.Error("tokenizer.special_tokens",
                absl::StrCat("must include ", absl::StrJoin(missing, " "),
                             " (BERT needs [PAD] [UNK] [CLS] [SEP] [MASK])"));
  }
  if (tokenizer.vocab_size() <= special) {
    check.Error("tokenizer.vocab_size",
                absl::StrCat("must be larger than the number of special tokens (", special,
                             "), got ", tokenizer.vocab_size()));
  }
  check.Between("tokenizer.vocab_size", tokenizer.vocab_size(), 1, 1 << 24);
  check.AtLeast("tokenizer.min_frequency", tokenizer.min_frequency(), 0);
  check.AtLeast("tokenizer.limit_alphabet", tokenizer.limit_alphabet(), 0);
}

void CheckPreprocess(const JobSpec& spec, Checker& check) {
  const bert::v1::PreprocessSpec& preprocess = spec.preprocess();
  check.AtLeast("preprocess.max_seq_length", preprocess.max_seq_length(), 8);
  check.Fraction("preprocess.validation_fraction", preprocess.validation_fraction(), 0, 0.5, true);
  check.AtLeast("preprocess.memory_limit_mb", preprocess.memory_limit_mb(), 64);
  if (!preprocess.from_dataset().empty()) {
    for (const char* field :
         {"shuffle_seed", "validation_fraction", "split_long_documents", "memory_limit_mb"}) {
      const std::string path = absl::StrCat("preprocess.", field);
      if (check.Has(path)) check.Error(path, "not used when preprocess.from_dataset is set");
    }
  }
}

void CheckSequenceFits(const JobSpec& spec, Checker& check);

// model.from: the architecture is the model's; only the dropouts may be set.
void CheckWarmStartModel(const JobSpec& spec, Checker& check) {
  const bert::v1::ModelSpec& model = spec.model();
  if (bert::protocol::IsJobModelReference(model.from()) &&
      !bert::protocol::ParseJobModelReference(model.from())) {
    check.Error("model.from",
                absl::StrCat("'", model.from(), "' is not 'job:<id>' or 'job:<id>/checkpoint-<step>' "
                             "(or a Hugging Face model directory)"));
  }
  for (const char* field : {"preset", "hidden_size", "num_hidden_layers", "num_attention_heads",
                            "intermediate_size", "max_position_embeddings", "type_vocab_size",
                            "initialization"}) {
    const std::string path = absl::StrCat("model.", field);
    if (check.Has(path)) {
      check.Error(path, "cannot be set with model.from: the architecture is the model's config.json; "
                        "remove one");
    }
  }
  check.Fraction("model.hidden_dropout_prob", model.hidden_dropout_prob(), 0, 1, false);
  check.Fraction("model.attention_probs_dropout_prob", model.attention_probs_dropout_prob(), 0, 1,
                 false);
  // Known once the model's config.json was read (or bertd resolved the job).
  if (model.max_position_embeddings() > 0) CheckSequenceFits(spec, check);
}

void CheckModel(const JobSpec& spec, Checker& check) {
  const bert::v1::ModelSpec& model = spec.model();
  if (!model.from().empty()) {
    CheckWarmStartModel(spec, check);
    return;
  }
  check.AtLeast("model.hidden_size", model.hidden_size(), 1);
  check.AtLeast("model.num_hidden_layers", model.num_hidden_layers(), 1);
  check.AtLeast("model.num_attention_heads", model.num_attention_heads(), 1);
  check.AtLeast("model.intermediate_size", model.intermediate_size(), 1);
  check.AtLeast("model.max_position_embeddings", model.max_position_embeddings(), 1);
  check.AtLeast("model.type_vocab_size", model.type_vocab_size(), 1);
  check.Fraction("model.hidden_dropout_prob", model.hidden_dropout_prob(), 0, 1, false);
  check.Fraction("model.attention_probs_dropout_prob", model.attention_probs_dropout_prob(), 0, 1,
                 false);
  check.OneOf("model.initialization", model.initialization(),
              {bert::protocol::kModelInitNormal, bert::protocol::kModelInitLocalAttention});
  if (const std::string error = bert::protocol::ModelInitializationSizeError(
          model.initialization(), model.hidden_size(), model.num_attention_heads());
      !error.empty()) {
    check.Error("model.initialization", error);
  }
  if (model.num_attention_heads() > 0 && model.hidden_size() > 0 &&
      model.hidden_size() % model.num_attention_heads() != 0) {
    // Name the field the user wrote; the preset's value otherwise.
    const std::string field =
        check.Has("model.num_attention_heads") && !check.Has("model.hidden_size")
            ? "model.num_attention_heads"
            : "model.hidden_size";
    check.Error(field, absl::StrCat("hidden_size (", model.hidden_size(),
                                    ") must be a multiple of num_attention_heads (",
                                    model.num_attention_heads(), ")"));
  }
  CheckSequenceFits(spec, check);
}

void CheckSequenceFits(const JobSpec& spec, Checker& check) {
  const bert::v1::ModelSpec& model = spec.model();
  const int32_t seq = spec.preprocess().max_seq_length();
  if (seq > model.max_position_embeddings() && model.max_position_embeddings() > 0) {
    const std::string field =
        check.Has("preprocess.max_seq_length") || !check.Has("model.max_position_embeddings")
            ? "preprocess.max_seq_length"
            : "model.max_position_embeddings";
    check.Error(field, absl::StrCat("max_seq_length (", seq,
                                    ") exceeds the model's max_position_embeddings (",
                                    model.max_position_embeddings(), ")"));
  }
}

void CheckTraining(const JobSpec& spec, Checker& check) {
  const bert::v1::TrainingSpec& training = spec.training();
  check.AtLeast("training.max_steps", training.max_steps(), 1);
  check.Between("training.per_device_batch_size", training.per_device_batch_size(), 1, 1 << 16);
  if (!(training.learning_rate() > 0 && training.learning_rate() < 1)) {
    check.Error("training.learning_rate",
                absl::StrCat("must be in (0, 1), got ", training.learning_rate()));
  }
  check.AtLeast("training.warmup_steps", training.warmup_steps(), 0);
  if (training.warmup_steps() > training.max_steps() && training.max_steps() > 0) {
    check.Error("training.warmup_steps",
                absl::StrCat("exceeds training.max_steps (", training.max_steps(), ")"));
  }
  check.Fraction("training.warmup_ratio", training.warmup_ratio(), 0, 1, false);
  if (check.Has("training.warmup_steps") && check.Has("training.warmup_ratio") &&
      training.warmup_steps() > 0 && training.warmup_ratio() > 0) {
    check.Error("training.warmup_ratio", "set either warmup_steps or warmup_ratio, not both");
  }
  check.Fraction("training.weight_decay", training.weight_decay(), 0, 1, true);
  check.Between("training.gradient_accumulation_steps", training.gradient_accumulation_steps(), 1,
                1 << 16);
  if (training.max_grad_norm() < 0) {
    check.Error("training.max_grad_norm", absl::StrCat("must be at least 0 (0 = no clipping), got ",
                                                       training.max_grad_norm()));
  }
  if (!(training.mlm_probability() > 0 && training.mlm_probability() < 1)) {
    check.Error("training.mlm_probability",
                absl::StrCat("must be in (0, 1), got ", training.mlm_probability()));
  }
  check.OneOf("training.precision", training.precision(), {"fp32", "bf16", "auto"});
  if (!(training.peak_tflops() >= 0 && training.peak_tflops() < 1e6)) {
    check.Error("training.peak_tflops",
                absl::StrCat("must be in [0, 1e6) TFLOP/s (0 = the engine's table or measurement), got ",
                             training.peak_tflops()));
  }
  check.AtLeast("training.save_steps", training.save_steps(), 0);
  check.AtLeast("training.save_total_limit", training.save_total_limit(), 0);
  check.AtLeast("training.logging_steps", training.logging_steps(), 1);
  check.AtLeast("training.eval_steps", training.eval_steps(), 0);
  if (training.eval_steps() > 0 && spec.preprocess().validation_fraction() == 0 &&
      spec.preprocess().from_dataset().empty()) {
    check.Error("training.eval_steps",
                "needs a validation split: set preprocess.validation_fraction above 0, or "
                "eval_steps to 0");
  }
}

void CheckResources(const JobSpec& spec, Checker& check) {
  const bert::v1::ResourcesSpec& resources = spec.resources();
  check.OneOf("resources.accelerator", resources.accelerator(), {"cpu", "cuda", "hpu"});
  check.Between("resources.devices", resources.devices(), 1, 64);
  check.Between("resources.hosts", resources.hosts(), 1, 1024);
  check.Between("resources.prep_shards", resources.prep_shards(), 1, 1024);
  check.Between("resources.max_attempts", resources.max_attempts(), 1, 100);
  if (!ValidName(resources.prep_pool())) {
    check.Error("resources.prep_pool", "must be a pool name (letters, digits, '-', '_', '.')");
  }
  if (!ValidName(resources.train_pool())) {
    check.Error("resources.train_pool", "must be a pool name (letters, digits, '-', '_', '.')");
  }
}

}  // namespace

void ValidateSpec(const JobSpec& spec, const FieldLocations& locations, SpecErrorList* errors) {
  Checker check(locations, errors);
  CheckJob(spec, check);
  CheckCorpus(spec, check);
  CheckTokenizer(spec, check);
  CheckPreprocess(spec, check);
  CheckModel(spec, check);
  CheckTraining(spec, check);
  CheckResources(spec, check);
}

}  // namespace bert::spec
