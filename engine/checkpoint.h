// Training checkpoints: output_dir/checkpoints/checkpoint-STEP/, complete or absent.
//
// A checkpoint holds the model (model.pt, tensors under Hugging Face names),
// the optimizer (optimizer.pt: flat AdamW moments and step), every rank's RNG
// state (rng.pt; on CUDA also each rank's GPU generator, cuda_rng.pt), trainer_state.json (step, data position, schedule, seed) and
// config.json (the model's sizes). Files are written into a hidden temporary
// directory, each fsynced, then manifest.json (sizes and SHA-256 of the others)
// last, then the directory is renamed into place and its parent fsynced.
// A checkpoint verifies when its manifest parses and every file matches it.
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/bert_config.h"
#include "engine/written_checkpoint.h"

namespace bert::engine {

// Everything a checkpoint holds, as CPU tensors that the training loop no
// longer touches, so it can be written on another thread.
struct CheckpointData {
  int64_t step = 0;
  int64_t consumed_samples = 0;  // the world's data position after `step`
  int64_t world_size = 1;
  uint64_t seed = 0;
  BertConfig config;
  std::vector<std::pair<std::string, torch::Tensor>> model;  // HF name -> tensor
  std::vector<std::pair<std::string, torch::Tensor>> optimizer;  // "params", "exp_avg", "exp_avg_sq", "step"
  std::vector<torch::Tensor> rng_states;  // one per rank, uint8: the default CPU generator's state
  // One per rank (uint8), each rank's CUDA generator (its own GPU), for CUDA
  // runs (cuda_rng.pt); empty for CPU runs and in checkpoints written before it.
  std::vector<torch::Tensor> cuda_rng_states;
  std::string trainer_json;  // extra trainer state (JSON object text), e.g. the log history
};

// Writes `data` as checkpoints_dir/checkpoint-STEP (replacing one of that step).
WrittenCheckpoint WriteCheckpoint(const std::string& checkpoints_dir, const CheckpointData& data);

// Checks manifest, sizes and checksums; on failure returns false and says why.
bool VerifyCheckpoint(const std::string& checkpoint_dir, std::string* why);

// Reads a checkpoint (which should have verified). Throws EngineError.
CheckpointData ReadCheckpoint(const std::string& checkpoint_dir);

// The model config and weights only (for export and predict).
BertConfig ReadCheckpointConfig(const std::string& checkpoint_dir);

// The model's config and tensors (HF name -> tensor), without the optimizer
// or RNG states: what a warm start from another run's checkpoint takes.
// Throws EngineError.
std::pair<BertConfig, std::vector<std::pair<std::string, torch::Tensor>>> ReadCheckpointModel(
    const std::string& checkpoint_dir);

// checkpoint-STEP directories under `checkpoints_dir`, newest first.
std::vector<std::pair<int64_t, std::string>> ListCheckpoints(const std::string& checkpoints_dir);

// The newest checkpoint that verifies; `skipped` gets "path: why" for each
// newer one that did not. nullopt when there is none.
std::optional<std::string> NewestValidCheckpoint(const std::string& checkpoints_dir,
                                                 std::vector<std::string>* skipped);

// Removes all but the newest `keep` complete checkpoints (keep <= 0: keep all),
// and stale temporary directories.
void PruneCheckpoints(const std::string& checkpoints_dir, int64_t keep);

// Writes checkpoints on one background thread, one at a time, so that the
// training loop only pays for the copy off the device. Submit() and Wait()
// are called from the training thread; `on_written` runs on the writer thread.
class CheckpointWriter {
 public:
  CheckpointWriter(std::string checkpoints_dir, int64_t save_total_limit,
                   std::function<void(const WrittenCheckpoint&)> on_written);
  ~CheckpointWriter();  // waits for a write in flight
  // Waits for the previous write, then starts writing `data`.
  void Submit(CheckpointData data);
  // Waits for the write in flight; rethrows its error.
  void Wait();

 private:
  std::string dir_;
  int64_t save_total_limit_;
  std::function<void(const WrittenCheckpoint&)> on_written_;
  std::thread thread_;
  std::exception_ptr error_;
};

}  // namespace bert::engine
