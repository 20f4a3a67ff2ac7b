// Dropout(x, p, training): inverted dropout as torch::dropout computes it
// (each element zeroed with probability p, the rest scaled by 1 / (1 - p)),
// fast on the CPU.
//
// libtorch's CPU dropout draws a Bernoulli sample per element from one
// sequential generator and multiplies by a stored mask; at bert-base that was
// an eighth of a bf16 training step. Here element i is kept when a 32-bit hash
// of (i, seed) is below (1 - p) * 2^32, the seed being one 64-bit draw of the
// default CPU generator per call. The draw is stateless, so the forward pass
// is one vectorised, parallel pass that stores no mask, the backward pass
// recomputes the same mask from the seed, the result does not depend on the
// thread count, and it follows the default generator's state (seeded per rank,
// checkpointed): a resumed run drops the same elements.
// Tensors on other devices use torch::dropout.
#pragma once

#include <torch/torch.h>

namespace bert::engine {

torch::Tensor Dropout(const torch::Tensor& x, double p, bool training);

}  // namespace bert::engine
