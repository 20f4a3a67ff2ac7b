#include "engine/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <cstring>
#include <mutex>

// The kernels are compiled for AVX-512 and AVX2 as well, chosen at load time.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define BERT_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BERT_VECTOR_CLONES
#endif

namespace bert::engine {

namespace {

// A 32-bit hash of the element index and the call's seed (the index through a
// Weyl sequence, then Wellons' lowbias32 finaliser).
inline uint32_t Draw(uint64_t seed, int64_t i) {
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

inline uint16_t ToBf16(float f) {  // round to nearest even, as c10::BFloat16 does
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  return (bits & 0x7fffffffu) > 0x7f800000u ? uint16_t{0x7fc0} : static_cast<uint16_t>(rounded);
}

// out[i] = x[i] * scale where element i is kept, else 0, for i in [begin, end).
BERT_VECTOR_CLONES void DropFloat(const float* x, float* out, int64_t begin, int64_t end,
                                  uint64_t seed, uint32_t keep_below, float scale) {
  for (int64_t i = begin; i < end; ++i) out[i] = Draw(seed, i) < keep_below ? x[i] * scale : 0.0f;
}

BERT_VECTOR_CLONES void DropBf16(const uint16_t* x, uint16_t* out, int64_t begin, int64_t end,
                                 uint64_t seed, uint32_t keep_below, float scale) {
  for (int64_t i = begin; i < end; ++i) {
    const uint16_t scaled = ToBf16(FromBf16(x[i]) * scale);
    out[i] = Draw(seed, i) < keep_below ? scaled : uint16_t{0};
  }
}

uint64_t DrawSeed() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CPUGeneratorImpl>()->random64();
}

// The dropped and scaled copy of x (float or bfloat16, on the CPU).
torch::Tensor Drop(const torch::Tensor& input, uint64_t seed, double p) {
  const torch::Tensor x = input.contiguous();
  torch::Tensor out = torch::empty_like(x);
  const double keep = (1.0 - p) * 4294967296.0;
  const uint32_t keep_below = keep >= 4294967295.0 ? 0xffffffffu : static_cast<uint32_t>(keep);
  const auto scale = static_cast<float>(1.0 / (1.0 - p));
  const bool bf16 = x.scalar_type() == torch::kBFloat16;
  at::parallel_for(0, x.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    if (bf16) {
      DropBf16(reinterpret_cast<const uint16_t*>(x.data_ptr()),
               reinterpret_cast<uint16_t*>(out.data_ptr()), begin, end, seed, keep_below, scale);
    } else {
      DropFloat(x.data_ptr<float>(), out.data_ptr<float>(), begin, end, seed, keep_below, scale);
    }
  });
  return out;
}

// Dropout is linear in x: its gradient is the incoming gradient dropped and
// scaled by the same mask, recomputed from the seed.
struct CpuDropout : torch::autograd::Function<CpuDropout> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               double p) {
    const uint64_t seed = DrawSeed();
    ctx->saved_data["seed"] = static_cast<int64_t>(seed);
    ctx->saved_data["p"] = p;
    return Drop(x, seed, p);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    // The gradient has the output's dtype: float or bfloat16, as the input.
    return {Drop(grads[0], seed, ctx->saved_data["p"].toDouble()), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor Dropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0) return x;
  const bool fast_dtype = x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16;
  if (!x.is_cpu() || !fast_dtype || p == 1) return torch::dropout(x, p, training);
  return CpuDropout::apply(x, p);
}

}  // namespace bert::engine
