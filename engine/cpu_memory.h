// KeepFreedMemoryMapped(): makes glibc's malloc reuse freed memory instead of
// returning it to the kernel.
//
// A training step frees and re-allocates the same activation and gradient
// buffers (MBs to tens of MBs each). glibc serves blocks over its mmap
// threshold (128 KB at first) with mmap and unmaps them on free, so every step
// page-faults that memory in again, zero-filled by the kernel. Raising the
// threshold to its maximum (32 MB) keeps them in the heap. Called once per process before
// training (it changes the whole process's malloc); a no-op elsewhere than
// glibc. Thread-safe (mallopt takes malloc's lock).
#pragma once

namespace bert::engine {

void KeepFreedMemoryMapped();

}  // namespace bert::engine
