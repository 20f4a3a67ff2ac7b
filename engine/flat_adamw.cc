#include "engine/flat_adamw.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>

#include "engine/cpu_kernels.h"

namespace bert::engine {

bool DecaysWeight(const std::string& name) {
  return name.find("bias") == std::string::npos && name.find("LayerNorm") == std::string::npos;
}

FlatAdamW::FlatAdamW(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                     AdamWOptions options)
    : options_(options) {
  TORCH_CHECK(!named.empty(), "FlatAdamW: no parameters");
  // Decayed parameters first, so that the decay is one contiguous slice.
  std::vector<const std::pair<std::string, torch::Tensor>*> order;
  for (const auto& p : named)
    if (DecaysWeight(p.first)) order.push_back(&p);
  for (const auto& p : named)
    if (!DecaysWeight(p.first)) order.push_back(&p);
  int64_t total = 0;
  for (const auto* p : order) {
    const torch::Tensor& t = p->second;
    TORCH_CHECK(t.scalar_type() == torch::kFloat32, "FlatAdamW: ", p->first, " is not fp32");
    layout_.push_back({p->first, t.sizes().vec(), total, t.numel()});
    total += t.numel();
    if (DecaysWeight(p->first)) decay_numel_ = total;
  }
  const auto float_options = named.front().second.options().requires_grad(false);
  params_ = torch::empty({total}, float_options);
  grads_ = torch::zeros({total}, float_options);
  exp_avg_ = torch::zeros({total}, float_options);
  exp_avg_sq_ = torch::zeros({total}, float_options);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < order.size(); ++i) {
    torch::Tensor param =
        order[i]->second;  // shares the TensorImpl with the module (and tied users)
    const Slot& slot = layout_[i];
    torch::Tensor view = params_.narrow(0, slot.offset, slot.numel).view(slot.shape);
    view.copy_(param);
    param.set_data(view);
    param.mutable_grad() = grads_.narrow(0, slot.offset, slot.numel).view(slot.shape);
  }
}

double FlatAdamW::ClipGradNorm(double max_norm) {
  torch::NoGradGuard no_grad;
  const double norm = grads_.norm().item<double>();
  // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
  const double coef = max_norm / (norm + 1e-6);
  if (max_norm > 0 && coef < 1.0) grads_.mul_(coef);
  return norm;
}

void FlatAdamW::Step(double lr) {
  RECORD_FUNCTION("FlatAdamW::Step", std::vector<c10::IValue>());  // a span in profiles
  torch::NoGradGuard no_grad;
  ++step_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bias_correction1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double bias_correction2 = 1.0 - std::pow(b2, static_cast<double>(step_));
  const double step_size = lr / bias_correction1;
  const double decay = 1.0 - lr * options_.weight_decay;
  if (params_.is_cpu()) {
    // One fused pass, split across the intra-op threads.
    float* p = params_.data_ptr<float>();
    const float* g = grads_.data_ptr<float>();
    float* m = exp_avg_.data_ptr<float>();
    float* v = exp_avg_sq_.data_ptr<float>();
    AdamWCoefficients c{static_cast<float>(decay),
                        static_cast<float>(b1),
                        static_cast<float>(b2),
                        static_cast<float>(step_size),
                        static_cast<float>(1.0 / std::sqrt(bias_correction2)),
                        static_cast<float>(options_.eps)};
    auto update = [&](int64_t begin, int64_t end) {
      at::parallel_for(begin, end, 1 << 16,
                       [&](int64_t b, int64_t e) { AdamWUpdate(p, g, m, v, b, e, c); });
    };
    update(0, decay_numel_);  // decayed weights first in the layout
    c.decay = 1.0f;
    update(decay_numel_, params_.numel());
    return;
  }
  if (options_.weight_decay != 0 && decay_numel_ > 0) {
    params_.narrow(0, 0, decay_numel_).mul_(decay);
  }
  exp_avg_.lerp_(grads_, 1.0 - b1);                         // m = b1 m + (1 - b1) g
  exp_avg_sq_.mul_(b2).addcmul_(grads_, grads_, 1.0 - b2);  // v = b2 v + (1 - b2) g^2
  // p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps)
  const torch::Tensor denom = (exp_avg_sq_.sqrt() / std::sqrt(bias_correction2)).add_(options_.eps);
  params_.addcdiv_(exp_avg_, denom, -step_size);
}

}  // namespace bert::engine
