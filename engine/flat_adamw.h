// FlatAdamW: AdamW over one flat buffer holding every parameter.
//
// The parameters become views into one contiguous fp32 tensor, and so do their
// gradients, so that the update, gradient clipping, the distributed all-reduce
// and a checkpoint's copy off the device each touch one tensor instead of
// hundreds. The update is torch.optim.AdamW's (Hugging Face's default):
// decoupled weight decay, bias-corrected moments. Parameters whose names say
// bias or LayerNorm get no weight decay, as the Hugging Face Trainer does.
// Not thread-safe; the training thread owns it.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace bert::engine {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class FlatAdamW {
 public:
  // Moves `named_parameters` (fp32, all on one device) into the flat buffer.
  FlatAdamW(const std::vector<std::pair<std::string, torch::Tensor>>& named_parameters, AdamWOptions options);

  torch::Tensor& params() { return params_; }          // (P) every parameter, in layout order
  torch::Tensor& grads() { return grads_; }            // (P) their gradients
  torch::Tensor& exp_avg() { return exp_avg_; }        // (P) first moments
  torch::Tensor& exp_avg_sq() { return exp_avg_sq_; }  // (P) second moments
  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }
  // name, offset and numel of each parameter in the flat buffers, in order.
  struct Slot {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset;
    int64_t numel;
  };
  const std::vector<Slot>& layout() const { return layout_; }

  void ZeroGrad() { grads_.zero_(); }
  // Scales the gradients so their global L2 norm is at most `max_norm` (if > 0);
  // returns the norm before clipping.
  double ClipGradNorm(double max_norm);
  // One AdamW update with learning rate `lr`.
  void Step(double lr);

 private:
  AdamWOptions options_;
  std::vector<Slot> layout_;
  int64_t decay_numel_ = 0;  // parameters [0, decay_numel_) get weight decay, the rest not
  torch::Tensor params_, grads_, exp_avg_, exp_avg_sq_;
  int64_t step_ = 0;
};

// Whether the Hugging Face Trainer decays a parameter of this name.
bool DecaysWeight(const std::string& name);

}  // namespace bert::engine
