#include "engine/cpu_memory.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>

#include <climits>
#endif

#include "engine/torch_version.h"

namespace bert::engine {

namespace {

#if defined(__linux__)

constexpr size_t kHugePage = size_t{2} << 20;

// libtorch 2.3 made Allocator::allocate non-const and added copy_data.
#if BERT_TORCH_AT_LEAST(2, 3)
#define BERT_ALLOCATOR_API_2_3 1
#define BERT_ALLOCATE_CONST
#else
#define BERT_ALLOCATE_CONST const
#endif

// Large blocks: their own mapping, in whole huge pages advised as huge-page
// memory, kept when freed and handed out again (a step asks for the same
// sizes each time) so that the kernel neither faults nor zero-fills them
// again. A request takes the smallest kept block that is at least its size
// and at most an eighth larger. What is kept is capped at a quarter of the
// machine's memory: a free that would pass the cap first unmaps all kept
// blocks (so that sizes no longer asked for do not stay). Smaller blocks:
// c10's alloc_cpu (64-byte aligned malloc).
class CachingHugePageAllocator final : public c10::Allocator {
 public:
  CachingHugePageAllocator() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    cap_ = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) / 4
                                 : size_t{4} << 30;
  }

  c10::DataPtr allocate(size_t bytes) BERT_ALLOCATE_CONST override {
    if (bytes < kLargeCpuBlock) {  // freed straight to malloc, with no lookup or lock
      void* data = c10::alloc_cpu(bytes);
      return {data, data, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
    }
    const size_t length = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* data = TakeKept(length);
    if (data == nullptr) data = MapNew(length);
    TORCH_CHECK(data != nullptr, "CPU allocator: not enough memory: you tried to allocate ", bytes,
                " bytes");
    return {data, data, &Free, c10::Device(c10::DeviceType::CPU)};
  }

  // For raw_deallocate, which does not say which kind of block it frees.
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }

#if defined(BERT_ALLOCATOR_API_2_3)
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    std::memcpy(dest, src, count);
  }
#endif

  static CachingHugePageAllocator& Instance() {
    static auto* allocator = new CachingHugePageAllocator();  // outlives static tensors
    return *allocator;
  }

 private:
  // A new mapping of `length` bytes (after unmapping the kept blocks if the
  // first try fails), or nullptr.
  void* MapNew(size_t length) const {
    for (int attempt = 0; attempt < 2; ++attempt) {
      void* data =
          ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      std::lock_guard<std::mutex> lock(mutex_);
      if (data != MAP_FAILED) {
        ::madvise(data, length, MADV_HUGEPAGE);  // advice only: without THP, plain pages
        mapped_.emplace(data, length);
        return data;
      }
      ReleaseKept();
    }
    return nullptr;
  }

  void* TakeKept(size_t length) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = kept_.lower_bound(length);
    if (it == kept_.end() || it->first > length + length / 8) return nullptr;
    void* data = it->second;
    kept_bytes_ -= it->first;
    kept_.erase(it);
    return data;
  }

  // Unmaps every kept block (the caller holds mutex_): what sizes a run asks
  // for can change (another batch shape), leaving kept blocks that no request
  // fits any more.
  void ReleaseKept() const {
    for (const auto& [length, data] : kept_) {
      ::munmap(data, length);
      mapped_.erase(data);
    }
    kept_.clear();
    kept_bytes_ = 0;
  }

  // Frees a block of either kind: large ones are kept, small ones go to malloc.
  static void Free(void* data) {
    if (data != nullptr && !Instance().Keep(data)) c10::free_cpu(data);
  }

  // Keeps (or, past the cap, unmaps) a large block; false for a small one.
  bool Keep(void* data) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = mapped_.find(data);
    if (it == mapped_.end()) return false;
    const size_t length = it->second;
    if (kept_bytes_ + length > cap_) ReleaseKept();
    if (length > cap_) {
      mapped_.erase(it);
      ::munmap(data, length);
      return true;
    }
    kept_.emplace(length, data);
    kept_bytes_ += length;
    return true;
  }

  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, size_t> mapped_;  // every large block: its length
  mutable std::multimap<size_t, void*> kept_;         // freed large blocks by length
  mutable size_t kept_bytes_ = 0;
  size_t cap_;
};

#endif

}  // namespace

void UseFastCpuMemory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum: other libraries' blocks too
  mallopt(M_TRIM_THRESHOLD, INT_MAX);   // the heap's free top is kept, not trimmed
#endif
#if defined(__linux__)
  c10::SetCPUAllocator(&CachingHugePageAllocator::Instance(), /*priority=*/1);
#endif
}

}  // namespace bert::engine
