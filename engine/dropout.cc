#include "engine/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <mutex>

namespace bert::engine {

namespace {

constexpr int64_t kChunk = 4096;  // elements per generator stream

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256+ (Blackman and Vigna): its high 32 bits are the uniform draws.
struct Xoshiro256Plus {
  uint64_t s[4];
  Xoshiro256Plus(uint64_t seed, uint64_t stream) {
    uint64_t state = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (uint64_t& word : s) word = SplitMix64(state);
  }
  uint64_t Next() {
    const uint64_t result = s[0] + s[3];
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
  }
};

uint64_t DrawSeed() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CPUGeneratorImpl>()->random64();
}

// Writes out = keep ? x * scale : 0 and keep, for every element: an element is
// kept when its 32-bit draw is below keep_threshold.
template <typename T>
void DropoutKernel(const T* x, T* out, uint8_t* keep, int64_t n, uint64_t seed, uint64_t keep_threshold,
                   float scale) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  at::parallel_for(0, chunks, 16, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      Xoshiro256Plus rng(seed, static_cast<uint64_t>(c));
      const int64_t first = c * kChunk, last = std::min(n, first + kChunk);
      for (int64_t i = first; i < last; ++i) {
        const bool kept = (rng.Next() >> 32) < keep_threshold;
        keep[i] = kept;
        out[i] = kept ? static_cast<T>(static_cast<float>(x[i]) * scale) : static_cast<T>(0);
      }
    }
  });
}

template <typename T>
void ScaleByMask(const T* grad, const uint8_t* keep, T* out, int64_t n, float scale) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      out[i] = keep[i] ? static_cast<T>(static_cast<float>(grad[i]) * scale) : static_cast<T>(0);
    }
  });
}

struct CpuDropout : torch::autograd::Function<CpuDropout> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input, double p) {
    const torch::Tensor x = input.contiguous();
    torch::Tensor out = torch::empty_like(x);
    torch::Tensor keep = torch::empty(x.sizes(), x.options().dtype(torch::kUInt8));
    const auto threshold = static_cast<uint64_t>((1.0 - p) * 4294967296.0);
    const auto scale = static_cast<float>(1.0 / (1.0 - p));
    const uint64_t seed = DrawSeed();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "Dropout", [&] {
      DropoutKernel<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), keep.data_ptr<uint8_t>(),
                              x.numel(), seed, threshold, scale);
    });
    ctx->save_for_backward({keep});
    ctx->saved_data["scale"] = static_cast<double>(scale);
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const torch::Tensor keep = ctx->get_saved_variables()[0];
    const auto scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const torch::Tensor grad = grads[0].contiguous();
    torch::Tensor out = torch::empty_like(grad);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, grad.scalar_type(), "DropoutBackward", [&] {
      ScaleByMask<scalar_t>(grad.data_ptr<scalar_t>(), keep.data_ptr<uint8_t>(), out.data_ptr<scalar_t>(),
                            grad.numel(), scale);
    });
    return {out, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor Dropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0) return x;
  if (!x.is_cpu() || p == 1) return torch::dropout(x, p, training);
  return CpuDropout::apply(x, p);
}

}  // namespace bert::engine
