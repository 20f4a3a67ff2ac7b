// UseFastCpuMemory(): makes libtorch's CPU allocations stop page-faulting on
// every training step.
//
// A training step frees and re-allocates the same activation and gradient
// buffers, from MBs to the (V,C) word-embedding gradient's ~94 MB at
// bert-base. glibc serves large blocks with a fresh mapping each time (and
// unmaps them on free), so the kernel faults every 4 KB page in again and
// zero-fills it: on the development VM a fault costs ~17 us, and at bert-base
// in bf16 the faults were a third of the step. This installs a CPU allocator
// that keeps freed blocks of kLargeCpuBlock and up and hands them out again,
// mapped with transparent huge pages when first made; it also raises glibc's
// mmap threshold, so that smaller blocks are reused from the heap. Called once
// per process before training; thread-safe; memory allocated before keeps its
// own deleter. Kept blocks count as the process's memory (at most a quarter of
// the machine's), as a GPU caching allocator's do.
#pragma once

#include <cstddef>

namespace bert::engine {

void UseFastCpuMemory();

// Bytes from which a libtorch CPU block is kept for reuse when freed.
inline constexpr size_t kLargeCpuBlock = size_t{1} << 20;

}  // namespace bert::engine
