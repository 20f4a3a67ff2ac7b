// MlmBatchLoader: reads this rank's micro-batches from a PackedSplit and masks
// them on a background thread, a few batches ahead of the training loop.
//
// Data position is one number, the count of samples the whole world has
// consumed. Global sample g is block Permutation(epoch = g / N)[g % N] of the
// split (a fresh shuffle per epoch, as Hugging Face's RandomSampler), and the
// step that starts at position c gives rank r of W, micro-batch k of A, the
// samples c + (k * W + r) * B + [0, B). So a run resumed on a different number
// of devices re-splits the same global batches instead of replaying them.
// Next() is called from one thread (the training loop); the split must outlive
// the loader.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/mlm_masker.h"
#include "engine/packed_dataset.h"

namespace bert::engine {

// One micro-batch: B blocks of T tokens, masked. Shapes as the model takes them.
struct MlmBatch {
  int64_t batch_size = 0;               // B
  int64_t seq_len = 0;                  // T
  std::vector<int64_t> input_ids;       // (B*T) after masking
  std::vector<int64_t> masked_positions;  // (M) flat indices into B*T, ascending
  std::vector<int64_t> labels;          // (M) original ids at those positions
};

// The shuffled order of a split's blocks for one epoch; thread-compatible.
class EpochPermutation {
 public:
  EpochPermutation(int64_t blocks, uint64_t seed, bool shuffle)
      : blocks_(blocks), seed_(seed), shuffle_(shuffle) {}
  int64_t Block(int64_t sample_index);  // the block of global sample `sample_index`

 private:
  int64_t blocks_;
  uint64_t seed_;
  bool shuffle_;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
};

struct LoaderOptions {
  int64_t batch_size = 8;        // B, per rank and micro-batch
  int64_t world_size = 1;        // W
  int64_t rank = 0;              // r
  int64_t accumulation = 1;      // A
  int64_t start_sample = 0;      // the data position to start from
  int64_t max_steps = -1;        // stop producing after this many steps (-1: never)
  bool shuffle = true;
  int prefetch = 4;              // micro-batches kept ready
};

class MlmBatchLoader {
 public:
  MlmBatchLoader(const PackedSplit& split, MaskingOptions masking, LoaderOptions options);
  ~MlmBatchLoader();  // stops and joins the worker thread
  MlmBatchLoader(const MlmBatchLoader&) = delete;
  MlmBatchLoader& operator=(const MlmBatchLoader&) = delete;

  // The next micro-batch in order (blocks until ready); rethrows a reader error.
  MlmBatch Next();
  // Samples the world consumes per optimizer step: B * W * A.
  int64_t samples_per_step() const;

 private:
  void Run();

  const PackedSplit& split_;
  MlmMasker masker_;
  LoaderOptions options_;
  EpochPermutation order_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<MlmBatch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

// Masks blocks [first, first + count) of `split` in order (no shuffle) as one batch:
// for evaluation, where every rank masks its share of the held-out split the same way.
MlmBatch MaskContiguousBlocks(const PackedSplit& split, const MlmMasker& masker, int64_t first,
                              int64_t count);

}  // namespace bert::engine
