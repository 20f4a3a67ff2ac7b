// Pretrain(): masked-language-model pre-training of BertForMaskedLM, as the
// Hugging Face Trainer runs it (AdamW, linear warmup and decay, gradient
// accumulation and clipping, periodic logging, evaluation and checkpoints),
// on one or several ranks, resuming from the newest valid checkpoint.
// No libtorch in this header: bert-worker's plumbing compiles without it.
#pragma once

#include <cstdint>
#include <string>

#include "engine/bert_config.h"
#include "engine/distributed_options.h"
#include "engine/written_checkpoint.h"

namespace bert::engine {

// bert.v1.TrainingSpec's fields and defaults.
struct TrainingOptions {
  int64_t max_steps = 100000;
  int64_t per_device_batch_size = 32;
  double learning_rate = 5e-5;
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;  // used when warmup_steps is 0
  double weight_decay = 0.0;
  int64_t gradient_accumulation_steps = 1;
  double max_grad_norm = 1.0;
  double mlm_probability = 0.15;
  std::string precision = "fp32";  // "fp32" or "bf16"
  int64_t save_steps = 500;        // 0: no periodic checkpoints
  int64_t save_total_limit = 0;    // 0: keep all
  int64_t logging_steps = 50;
  int64_t eval_steps = 500;        // 0: no periodic evaluation
  uint64_t seed = 42;
  int64_t eval_max_blocks = 0;     // 0: the whole validation split
  double peak_flops = 0;           // per device, for MFU; 0: measured (CPU) or looked up (CUDA)
};

struct PretrainOptions {
  std::string dataset_dir;
  std::string output_dir;  // checkpoints go to output_dir/checkpoints
  BertConfig model;        // vocab_size is taken from the dataset when 0
  TrainingOptions training;
  std::string device = "cpu";  // "cpu", "cuda" (device local_rank) or "hpu"
  int threads = 0;             // intra-op CPU threads; 0: libtorch's default
  DistributedOptions distributed;
};

// What the loop reports, as it goes. Called from the training thread, except
// OnCheckpoint (the checkpoint writer's thread): implementations must be thread-safe.
class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  virtual void OnProgress(int64_t step, int64_t max_steps) = 0;
  virtual void OnMetric(const std::string& name, double value, int64_t step) = 0;
  virtual void OnLog(const std::string& level, const std::string& message) = 0;
  virtual void OnCheckpoint(const WrittenCheckpoint& checkpoint) = 0;
  virtual bool Cancelled() const = 0;  // checked at every step boundary
};

struct PretrainResult {
  int64_t steps_done = 0;  // the global step reached
  bool cancelled = false;
  double last_eval_accuracy = -1;  // -1 when never evaluated
  double last_eval_loss = -1;
};

// Throws EngineError(kSpecError) for options that cannot run here, e.g. a device
// this libtorch lacks: called before any work so that errors come early.
void ValidatePretrainOptions(const PretrainOptions& options);

// Runs (or resumes) pre-training. Throws EngineError or c10::Error.
PretrainResult Pretrain(const PretrainOptions& options, TrainingObserver& observer);

// The accelerators this libtorch can use here, for `bert-worker devices`:
// kind "cuda" or "hpu" with a count, or "cpu" with count 0.
struct DeviceInventory {
  std::string kind = "cpu";
  int64_t count = 0;
};
DeviceInventory ProbeDevices();

// Linear warmup then linear decay to 0 at max_steps (get_linear_schedule_with_warmup):
// the learning rate of optimizer step `step` (0-based).
double LinearScheduleLr(double base_lr, int64_t step, int64_t warmup_steps, int64_t max_steps);

}  // namespace bert::engine
