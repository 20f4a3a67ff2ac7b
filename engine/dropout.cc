#include "engine/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <mutex>

#include "engine/cpu_kernels.h"

namespace bert::engine {

namespace {

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
