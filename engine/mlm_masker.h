// MlmMasker: Hugging Face DataCollatorForLanguageModeling's masking, in C++.
//
// Each non-special token is chosen with probability mlm_probability; of the
// chosen, mask_replace_prob (80%) become [MASK], random_replace_prob (10%) a
// uniformly random id in [0, vocab_size), the rest stay unchanged (Hugging
// Face's mask_replace_prob and random_replace_prob, same defaults); labels exist only for chosen tokens (the others are
// ignored, Hugging Face's -100). Randomness comes from a counter-based
// generator keyed by (seed, stream, sample index), so a sample's mask does not
// depend on which rank or thread masks it, nor on where a run resumed.
// Immutable after construction; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/packed_dataset.h"

namespace bert::engine {

// SplitMix64 (Steele et al.): a tiny, portable generator whose output is fixed
// by the seed alone (the standard library's distributions are not portable).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t Below(uint64_t n) {  // [0, n), Lemire's multiply-shift (bias < 2^-64 * n)
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

// A well-mixed key from several integers (for seeding per sample).
uint64_t MixKey(uint64_t a, uint64_t b, uint64_t c);

struct MaskingOptions {
  double mlm_probability = 0.15;
  double mask_replace_prob = 0.8;    // of the chosen: [MASK]
  double random_replace_prob = 0.1;  // of the chosen: a random id; the rest unchanged
  int64_t vocab_size = 0;
  SpecialTokenIds special_ids;
  uint64_t seed = 42;
  uint64_t stream = 0;  // 0 training, 1 evaluation: independent masks
};

class MlmMasker {
 public:
  explicit MlmMasker(MaskingOptions options) : options_(options) {}

  // Masks ids[0, T) of global sample `sample_index` in place. Appends the
  // chosen positions (offset by `position_base`) and their original ids.
  void Mask(int64_t sample_index, int64_t* ids, int64_t T, int64_t position_base,
            std::vector<int64_t>* positions, std::vector<int64_t>* labels) const;

 private:
  MaskingOptions options_;
};

}  // namespace bert::engine
