// Pretrain(): masked-language-model pre-training of BertForMaskedLM, as the
// Hugging Face Trainer runs it (AdamW, linear warmup and decay, gradient
// accumulation and clipping, periodic logging, evaluation and checkpoints),
// on one or several ranks, resuming from the newest valid checkpoint.
// No libtorch in this header: bert-worker's plumbing compiles without it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/bert_config.h"
#include "engine/distributed_options.h"
#include "engine/written_checkpoint.h"
#include "protocol/worker_config.h"

namespace c10 {
struct Device;  // torch::Device
}

namespace bert::engine {

class Distributed;  // engine/distributed.h

// The training settings and their defaults: the worker protocol's "training"
// part (protocol/worker_config.h), written there once.
using TrainingOptions = protocol::WorkerTrainingConfig;

// Built from CONFIG.json by engine/worker_config.h (ToPretrainOptions).
struct PretrainOptions {
  std::string dataset_dir;
  std::string output_dir;  // checkpoints go to output_dir/checkpoints
  BertConfig model;        // vocab_size is taken from the dataset when 0
  // How a new model's weights start (protocol::kModelInitNormal or
  // kModelInitLocalAttention); a warm start or a resumed run loads its weights.
  std::string initialization = protocol::kModelInitNormal;
  TrainingOptions training;
  std::string device = protocol::kDefaultWorkerDevice;  // "cpu", or "cuda"/"hpu": device local_rank
  int threads = 0;             // intra-op CPU threads; 0: libtorch's default
  DistributedOptions distributed;
  // Warm start (engine/warm_start.h): the directory whose weights a new run
  // starts from; "": none. `model` is then unused: the architecture is the
  // source's config, with `init_model` (the CONFIG.json's "model") checked
  // against it and its dropouts applied. A run that finds a checkpoint of its
  // own resumes from it instead.
  std::string init_from;
  protocol::WorkerModelConfig init_model;
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
  // Checked at every step boundary, like Cancelled: true asks the run to
  // write a checkpoint at the step reached (unless it has one there) and stop,
  // so that a later run resumes exactly there (a pause).
  virtual bool PauseRequested() const { return false; }
};

struct PretrainResult {
  int64_t steps_done = 0;  // the global step reached
  bool cancelled = false;
  bool paused = false;  // stopped by PauseRequested, with a checkpoint at steps_done
  double last_eval_accuracy = -1;  // -1 when never evaluated
  double last_eval_loss = -1;
};

// Throws EngineError(kSpecError) for options that cannot run here, e.g. a device
// this libtorch lacks: called before any work so that errors come early.
void ValidatePretrainOptions(const PretrainOptions& options);

// What a front that owns the process lends the loop (engine/python: the
// Python worker, where Habana's bridge lives). Every member may be empty.
struct PretrainRuntime {
  // Makes the world instead of Distributed::Create, given the resolved options
  // and the training device: e.g. Distributed::Adopt over a process group the
  // front created (torch.distributed's "hccl").
  std::function<std::unique_ptr<Distributed>(const DistributedOptions&, const c10::Device&)> join_world;
  // Called on the training thread after each micro-batch's backward, and after
  // each optimizer step (Habana's mark_step, which ends a lazy-mode graph).
  std::function<void()> after_backward;
  std::function<void()> after_optimizer_step;
};

// Runs (or resumes) pre-training. Throws EngineError or c10::Error, and
// whatever the runtime's functions throw.
PretrainResult Pretrain(const PretrainOptions& options, TrainingObserver& observer,
                        const PretrainRuntime& runtime = {});

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
