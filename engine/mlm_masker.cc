#include "engine/mlm_masker.h"

namespace bert::engine {

uint64_t MixKey(uint64_t a, uint64_t b, uint64_t c) {
  SplitMix64 g(a);
  uint64_t h = g.Next() ^ b;
  SplitMix64 g2(h);
  h = g2.Next() ^ c;
  SplitMix64 g3(h);
  return g3.Next();
}

void MlmMasker::Mask(int64_t sample_index, int64_t* ids, int64_t T, int64_t position_base,
                     std::vector<int64_t>* positions, std::vector<int64_t>* labels) const {
  const SpecialTokenIds& sp = options_.special_ids;
  SplitMix64 rng(MixKey(options_.seed, options_.stream, static_cast<uint64_t>(sample_index)));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t id = ids[t];
    // One draw per token, special or not, so that positions stay independent.
    const double chosen = rng.Uniform();
    const double action = rng.Uniform();
    const uint64_t random_id = rng.Below(static_cast<uint64_t>(options_.vocab_size));
    if (id == sp.cls || id == sp.sep || id == sp.pad) continue;  // the special-tokens mask
    if (chosen >= options_.mlm_probability) continue;
    positions->push_back(position_base + t);
    labels->push_back(id);
    if (action < options_.mask_replace_prob) {
      ids[t] = sp.mask;
    } else if (action < options_.mask_replace_prob + options_.random_replace_prob) {
      ids[t] = static_cast<int64_t>(random_id);
    }  // else unchanged
  }
}

}  // namespace bert::engine
