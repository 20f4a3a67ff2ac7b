// Dropout(x, p, training): inverted dropout as torch::dropout computes it
// (each element zeroed with probability p, the rest scaled by 1 / (1 - p)),
// fast on the CPU.
//
// libtorch's CPU dropout draws a Bernoulli sample per element from one
// sequential generator, which at bert-base took an eighth of a bf16 training
// step. Here each 4,096-element chunk has its own xoshiro256+ stream, seeded
// from one 64-bit draw of the default CPU generator and the chunk's index, so
// the mask is drawn in parallel, does not depend on the thread count, and
// follows the default generator's state (seeded per rank, checkpointed): a
// resumed run drops the same elements. The forward pass writes the output and
// a byte mask in one pass; the backward pass scales the gradient by the mask.
// Tensors on other devices use torch::dropout.
#pragma once

#include <torch/torch.h>

namespace bert::engine {

torch::Tensor Dropout(const torch::Tensor& x, double p, bool training);

}  // namespace bert::engine
