// UseFastCpuMemory(): makes libtorch's CPU allocations stop page-faulting on
// every training step.
//
// A training step frees and re-allocates the same activation and gradient
// buffers, from MBs to the (V,C) word-embedding gradient's ~94 MB at
// bert-base. glibc serves blocks over its mmap threshold with a fresh mapping
// each time, and the kernel faults it in 4 KB page by page, zero-filling each:
// at bert-base in bf16 that was a third of the step. This raises glibc's
// threshold to its maximum (32 MB), so blocks up to it are reused from the
// heap, and installs a CPU allocator that backs larger blocks with transparent
// huge pages (one fault per 2 MB). Called once per process before training;
// thread-safe; the previous allocator keeps freeing what it allocated.
#pragma once

#include <cstddef>

namespace bert::engine {

void UseFastCpuMemory();

// Bytes from which a CPU block is mapped on its own with huge pages.
inline constexpr size_t kLargeCpuBlock = size_t{1} << 20;

}  // namespace bert::engine
