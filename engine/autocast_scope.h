// AutocastScope: bf16 autocast on a device for the scope's lifetime; a no-op
// when disabled. On exit it clears autocast's cache of bf16 weight copies,
// which the next optimizer update makes stale. Not thread-safe: autocast
// state is per thread; one scope at a time on the training thread.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "engine/torch_version.h"

namespace bert::engine {

class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, bool enabled) : device_(device), enabled_(enabled) {
    if (!enabled_) return;
#if BERT_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_dtype(device_.type(), at::kBFloat16);
    at::autocast::set_autocast_enabled(device_.type(), true);
#else
    if (device_.is_cpu()) {
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    } else {
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    }
#endif
  }
  ~AutocastScope() {
    if (!enabled_) return;
#if BERT_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(device_.type(), false);
#else
    if (device_.is_cpu()) {
      at::autocast::set_cpu_enabled(false);
    } else {
      at::autocast::set_enabled(false);
    }
#endif
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  torch::Device device_;
  bool enabled_;
};

}  // namespace bert::engine
