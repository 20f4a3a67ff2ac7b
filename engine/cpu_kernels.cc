#include "engine/cpu_kernels.h"

#include <cmath>
#include <cstring>

// GCC/Clang target_clones on x86-64 Linux; elsewhere one baseline build.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define BERT_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BERT_VECTOR_CLONES
#endif

namespace bert::engine {

namespace {

inline uint32_t Hash(uint64_t seed, int64_t i) {
  const auto index = static_cast<uint64_t>(i);
  uint32_t x = static_cast<uint32_t>(index) * 0x9e3779b9u +
               static_cast<uint32_t>(index >> 32) * 0x85ebca6bu + static_cast<uint32_t>(seed);
  x ^= static_cast<uint32_t>(seed >> 32);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

inline float FromBf16(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

inline uint16_t ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  return (bits & 0x7fffffffu) > 0x7f800000u ? uint16_t{0x7fc0} : static_cast<uint16_t>(rounded);
}

}  // namespace

BERT_VECTOR_CLONES void DropFloat(const float* x, float* out, int64_t begin, int64_t end,
                                  uint64_t seed, uint32_t keep_below, float scale) {
  for (int64_t i = begin; i < end; ++i) out[i] = Hash(seed, i) < keep_below ? x[i] * scale : 0.0f;
}

BERT_VECTOR_CLONES void DropBf16(const uint16_t* x, uint16_t* out, int64_t begin, int64_t end,
                                 uint64_t seed, uint32_t keep_below, float scale) {
  for (int64_t i = begin; i < end; ++i) {
    const uint16_t scaled = ToBf16(FromBf16(x[i]) * scale);
    out[i] = Hash(seed, i) < keep_below ? scaled : uint16_t{0};
  }
}

BERT_VECTOR_CLONES void AdamWUpdate(float* p, const float* g, float* m, float* v, int64_t begin,
                                    int64_t end, const AdamWCoefficients& c) {
  const float decay = c.decay, b1 = c.beta1, b2 = c.beta2, step_size = c.step_size;
  const float inv_sqrt_bc2 = c.inv_sqrt_bias_correction2, eps = c.eps;
  for (int64_t i = begin; i < end; ++i) {
    const float grad = g[i];
    const float mi = m[i] + (1.0f - b1) * (grad - m[i]);  // lerp, as torch for weight < 0.5
    const float vi = b2 * v[i] + (1.0f - b2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace bert::engine
