// The engine's checks that depend on the training device, written once and run
// two ways: by GoogleTest on the CPU (engine_device_test, in every build) and
// by the standalone engine_device_check program on any device, e.g. CUDA by
// scripts/gpu-check.sh on a machine that may have no GoogleTest.
//
// Each check returns "" when it passes, else what failed (one line per fault).
// They need libtorch, the engine and tests/engine/test_corpus only.
#pragma once

#include <torch/torch.h>

#include <string>

namespace bert::engine::testing {

// A world on `device` refuses a tensor on another device in every collective,
// naming the collective, and takes its own; a world on "meta" refuses CPU
// tensors (the NCCL fault: CPU tensors handed to a CUDA world).
std::string CheckCollectivesTakeOnlyTheWorldsDevice(const torch::Device& device);

// BertSelfAttention (fused scaled-dot-product attention on libtorch >= 2.0)
// against softmax(Q K^T / sqrt(D) + mask) V written out, with padding, in
// fp32 and under bf16 autocast.
std::string CheckAttentionMatchesReference(const torch::Device& device);

// The checkpoint format keeps each rank's CUDA generator state (cuda_rng.pt)
// next to the CPU ones, reads checkpoints without it, and refuses a count that
// does not match the ranks. On CUDA the restored state replays the same draws.
std::string CheckCheckpointKeepsDeviceRngStates(const torch::Device& device, const std::string& work_dir);

// Pretrain() on `device` with dropout: 6 steps straight, against 3 steps,
// stop, and a resume to 6 from the checkpoint; the losses of steps 4-6 agree
// (exactly on the CPU, within 1e-4 relative on accelerators, whose atomics
// reorder sums). Every collective of the loop runs through the world's checks.
std::string CheckTrainingResumesExactly(const torch::Device& device, const std::string& work_dir);

}  // namespace bert::engine::testing
