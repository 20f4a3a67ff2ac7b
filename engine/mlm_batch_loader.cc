#include "engine/mlm_batch_loader.h"

#include <utility>

namespace bert::engine {

int64_t EpochPermutation::Block(int64_t sample_index) {
  const int64_t epoch = sample_index / blocks_;
  const int64_t pos = sample_index % blocks_;
  if (!shuffle_) return pos;
  if (epoch != epoch_) {
    // Fisher-Yates with a generator keyed by (seed, epoch): portable and reproducible.
    order_.resize(static_cast<size_t>(blocks_));
    for (int64_t i = 0; i < blocks_; ++i) order_[i] = i;
    SplitMix64 rng(MixKey(seed_, 0x5348554646ULL /* "SHUFF" */, static_cast<uint64_t>(epoch)));
    for (int64_t i = blocks_ - 1; i > 0; --i) {
      std::swap(order_[i], order_[rng.Below(static_cast<uint64_t>(i + 1))]);
    }
    epoch_ = epoch;
  }
  return order_[pos];
}

MlmBatchLoader::MlmBatchLoader(const PackedSplit& split, MaskingOptions masking, LoaderOptions options)
    : split_(split),
      masker_(masking),
      options_(options),
      order_(split.blocks(), masking.seed, options.shuffle) {
  thread_ = std::thread([this] { Run(); });
}

MlmBatchLoader::~MlmBatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int64_t MlmBatchLoader::samples_per_step() const {
  return options_.batch_size * options_.world_size * options_.accumulation;
}

void MlmBatchLoader::Run() {
  const int64_t B = options_.batch_size, T = split_.seq_len();
  const int64_t W = options_.world_size, A = options_.accumulation;
  try {
    for (int64_t step = 0; options_.max_steps < 0 || step < options_.max_steps; ++step) {
      const int64_t step_start = options_.start_sample + step * samples_per_step();
      for (int64_t k = 0; k < A; ++k) {
        MlmBatch batch;
        batch.batch_size = B;
        batch.seq_len = T;
        batch.input_ids.resize(static_cast<size_t>(B * T));
        const int64_t first = step_start + (k * W + options_.rank) * B;
        for (int64_t b = 0; b < B; ++b) {
          int64_t* ids = batch.input_ids.data() + b * T;
          split_.ReadBlock(order_.Block(first + b), ids);
          masker_.Mask(first + b, ids, T, b * T, &batch.masked_positions, &batch.labels);
        }
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || static_cast<int>(ready_.size()) < options_.prefetch; });
        if (stop_) return;
        ready_.push_back(std::move(batch));
        cv_.notify_all();
      }
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

MlmBatch MlmBatchLoader::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !ready_.empty() || error_ != nullptr; });
  if (ready_.empty()) std::rethrow_exception(error_);
  MlmBatch batch = std::move(ready_.front());
  ready_.pop_front();
  cv_.notify_all();
  return batch;
}

MlmBatch MaskContiguousBlocks(const PackedSplit& split, const MlmMasker& masker, int64_t first,
                              int64_t count) {
  MlmBatch batch;
  batch.batch_size = count;
  batch.seq_len = split.seq_len();
  const int64_t T = batch.seq_len;
  batch.input_ids.resize(static_cast<size_t>(count * T));
  for (int64_t b = 0; b < count; ++b) {
    int64_t* ids = batch.input_ids.data() + b * T;
    split.ReadBlock(first + b, ids);
    masker.Mask(first + b, ids, T, b * T, &batch.masked_positions, &batch.labels);
  }
  return batch;
}

}  // namespace bert::engine
