// The one place the engine tells libtorch versions apart: it builds against
// Debian's libtorch 1.13 (CPU) and against CUDA libtorch 2.x, and each API
// difference is a BERT_TORCH_AT_LEAST test on the version libtorch was built as.
//   2.0: at::scaled_dot_product_attention (bert_model.cc); Gloo and NCCL are
//        c10d::Backends, no longer ProcessGroups (distributed.cc)
//   2.3: Allocator::allocate non-const, copy_data (cpu_memory.cc)
//   2.4: device-generic autocast setters (autocast_scope.h)
#pragma once

#include <torch/version.h>

#define BERT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))
