#include "engine/cpu_memory.h"

#if defined(__GLIBC__)
#include <malloc.h>

#include <climits>
#endif

namespace bert::engine {

void KeepFreedMemoryMapped() {
#if defined(__GLIBC__)
  // Blocks up to glibc's largest mmap threshold (32 MB: every activation of
  // bert-base at 1,024 tokens a step) come from the heap and are reused after
  // free; larger ones are still mapped, so that malloc never runs out of
  // heap address space. The heap's free top is kept, not trimmed.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

}  // namespace bert::engine
