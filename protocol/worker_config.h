// The CONFIG.json that bert-agent writes and bert-worker reads for the
// `pretrain` and `export` commands (docs/worker-protocol.md), as one schema.
//
// Every key and every default is written here once: the member initialisers
// are the defaults (the article's settings, also bert.v1.TrainingSpec's, see
// spec/spec_defaults.cc), and ToJson/FromJson in worker_config.cc name each key
// once for both directions. FromJson is strict: an unknown key at any level, a
// value of the wrong type or a missing required key is an error naming the
// file and the full key path ("pretrain-config.json: training.learning_rat:
// unknown key"). A key that is absent (or null) keeps its default.
//
// Standard library and nlohmann-json only: bert-worker links it without
// protobuf, Abseil or gRPC, and the engine's option structs are these types.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace bert::protocol {

// model.initialization (the job spec's and the worker's): Hugging Face's
// N(0, initializer_range) everywhere, the article's and the default; or that
// plus the first layer attending to neighbouring tokens from the start
// (engine/local_attention_init.h).
inline constexpr char kModelInitNormal[] = "normal";
inline constexpr char kModelInitLocalAttention[] = "local-attention";
inline bool IsModelInitialization(std::string_view name) {
  return name == kModelInitNormal || name == kModelInitLocalAttention;
}
// Why `initialization` cannot start a model with these sizes ("" when it can):
// local-attention pairs each head's dimensions, so it needs an even head size.
// The spec validator and the worker both ask this.
inline std::string ModelInitializationSizeError(std::string_view initialization,
                                                int64_t hidden_size, int64_t num_attention_heads) {
  if (initialization != kModelInitLocalAttention || num_attention_heads < 1 ||
      hidden_size % num_attention_heads != 0 || (hidden_size / num_attention_heads) % 2 == 0) {
    return "";
  }
  return "local-attention needs an even head size; hidden_size / num_attention_heads is " +
         std::to_string(hidden_size / num_attention_heads);
}

// The device a worker trains on when the config names none.
inline constexpr char kDefaultWorkerDevice[] = "cpu";

// "model": the sizes of the BERT model. Each size is optional: absent, it is
// the preset's (or, without a preset, bert-base-uncased's, engine/bert_config.h).
// The agent always writes every size, resolved from the job spec.
struct WorkerModelConfig {
  std::optional<std::string> preset;  // e.g. "bert-tiny"; absent (or ""): none
  std::optional<int64_t> vocab_size;  // absent: the dataset's vocabulary size
  std::optional<int64_t> hidden_size;
  std::optional<int64_t> num_hidden_layers;
  std::optional<int64_t> num_attention_heads;
  std::optional<int64_t> intermediate_size;
  std::optional<int64_t> max_position_embeddings;
  std::optional<int64_t> type_vocab_size;
  std::optional<double> hidden_dropout_prob;
  std::optional<double> attention_probs_dropout_prob;
  // How a new model's weights start: kModelInitNormal (absent) or
  // kModelInitLocalAttention. A warm start or a resumed run loads its weights.
  std::optional<std::string> initialization;

  bool operator==(const WorkerModelConfig&) const = default;
};

// "training": bert.v1.TrainingSpec's fields and defaults (the article's run),
// plus an engine knob (eval_max_blocks) and peak_flops (the spec's peak_tflops
// in FLOP/s). The engine trains with this struct as it is (engine::TrainingOptions).
struct WorkerTrainingConfig {
  int64_t max_steps = 100000;
  int64_t per_device_batch_size = 32;
  double learning_rate = 5e-5;
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;  // used when warmup_steps is 0
  double weight_decay = 0.0;
  int64_t gradient_accumulation_steps = 1;
  double max_grad_norm = 1.0;
  double mlm_probability = 0.15;
  double mask_replace_prob = 0.8;    // of the chosen tokens: [MASK]
  double random_replace_prob = 0.1;  // of the chosen tokens: a random id (the rest unchanged)
  std::string precision = "fp32";  // "fp32", "bf16" or "auto" (engine/precision.h decides)
  int64_t save_steps = 500;        // 0: only the final checkpoint (at max_steps)
  int64_t save_total_limit = 0;    // 0: keep all
  int64_t logging_steps = 50;
  int64_t eval_steps = 500;  // 0: no periodic evaluation
  uint64_t seed = 42;
  int64_t eval_max_blocks = 0;  // 0: the whole validation split
  // Per device, for MFU: the spec's training.peak_tflops x 1e12; 0: measured
  // (CPU) or looked up by the GPU's name (engine/device_peak.h).
  double peak_flops = 0;

  bool operator==(const WorkerTrainingConfig&) const = default;
};

// "distributed": where a rank sits in a training world and how the ranks meet.
// The engine uses this struct as it is (engine::DistributedOptions).
struct WorkerDistributedConfig {
  std::string backend;  // "gloo", "nccl" or "hccl"; "": nccl on cuda, hccl on hpu, else gloo (ResolvedBackend)
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;  // the accelerator index on this host
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;  // rank 0 serves the TCP store here
  // This host's address, the one the other hosts reach it at: the collectives'
  // transport (Gloo) binds to it. "": the master's address on one host, else
  // whatever this host's name resolves to.
  std::string local_addr;
  int64_t timeout_seconds = 300;

  bool operator==(const WorkerDistributedConfig&) const = default;
};

// CONFIG.json of `bert-worker pretrain`.
struct WorkerPretrainConfig {
  std::string dataset_dir;  // required
  std::string output_dir;   // required; checkpoints go to output_dir/checkpoints
  WorkerModelConfig model;
  WorkerTrainingConfig training;
  std::string device = kDefaultWorkerDevice;  // "cpu", or "cuda"/"hpu": device local_rank
  int threads = 0;                            // intra-op CPU threads; 0: libtorch's default
  WorkerDistributedConfig distributed;
  // Warm start (the job spec's model.from): a Hugging Face BERT directory
  // (config.json + model.safetensors) or another run's checkpoint-STEP
  // directory whose weights the run starts from, at step 0 with a fresh
  // optimizer and schedule. The architecture is its config's: model sizes
  // given above must agree with it (the dropouts may differ). Ignored when
  // output_dir/checkpoints holds a checkpoint to resume from. "": none.
  std::string init_from;

  bool operator==(const WorkerPretrainConfig&) const = default;
};

// CONFIG.json of `bert-worker export`: every key is required.
struct WorkerExportConfig {
  std::string checkpoint_dir;  // a checkpoint-STEP directory, or a directory holding them
  std::string tokenizer_dir;   // holds tokenizer.json and vocab.txt
  std::string output_dir;      // the Hugging Face model directory to write

  bool operator==(const WorkerExportConfig&) const = default;
};

// `backend`, or when it is empty the device's default: "nccl" on cuda, else "gloo".
std::string ResolvedBackend(const WorkerDistributedConfig& distributed, std::string_view device);

// Every key, optional model sizes only when set.
nlohmann::json ToJson(const WorkerPretrainConfig& config);
nlohmann::json ToJson(const WorkerExportConfig& config);

// Reads `json` into `*out` (which starts from the defaults). On failure returns
// false and sets `*error` to "FILE: KEY.PATH: what", `file_name` being FILE.
bool FromJson(const nlohmann::json& json, std::string_view file_name, WorkerPretrainConfig* out,
              std::string* error);
bool FromJson(const nlohmann::json& json, std::string_view file_name, WorkerExportConfig* out,
              std::string* error);

// As FromJson, from the file's text; invalid JSON is an error too.
bool ParseWorkerConfig(std::string_view text, std::string_view file_name, WorkerPretrainConfig* out,
                       std::string* error);
bool ParseWorkerConfig(std::string_view text, std::string_view file_name, WorkerExportConfig* out,
                       std::string* error);

}  // namespace bert::protocol
