// Element-wise CPU kernels over raw arrays, for the engine's hot loops that
// libtorch has no single fused operator for. No libtorch here: the file is
// compiled with -O3 and without errno from math functions (nothing reads it),
// so that the loops vectorise, and each kernel is also built for AVX2 and
// AVX-512, the best chosen when the program loads. The callers split the
// index range across threads; a kernel touches only [begin, end).
#pragma once

#include <cstdint>

namespace bert::engine {

// Dropout's mask: element i is kept when a 32-bit hash of the index
// (through a Weyl sequence) and the seed (Wellons' lowbias32 finaliser) is
// below keep_below. Stateless, so any range can be drawn on any thread, and
// the backward pass redraws the forward pass's mask from the same seed.
// out[i] = x[i] * scale where element i is kept, else 0 (x and out may be
// the same array).
void DropFloat(const float* x, float* out, int64_t begin, int64_t end, uint64_t seed,
               uint32_t keep_below, float scale);
// The same on bfloat16 bit patterns: the product is taken in float and rounded
// to nearest even, as c10::BFloat16 rounds.
void DropBf16(const uint16_t* x, uint16_t* out, int64_t begin, int64_t end, uint64_t seed,
              uint32_t keep_below, float scale);

// AdamW's update of p, m and v from g, as torch.optim.AdamW computes it:
// m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
// p = p * decay - step_size * m / (sqrt(v) * inv_sqrt_bias_correction2 + eps).
struct AdamWCoefficients {
  float decay, beta1, beta2, step_size, inv_sqrt_bias_correction2, eps;
};
void AdamWUpdate(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end,
                 const AdamWCoefficients& c);

}  // namespace bert::engine
