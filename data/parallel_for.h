// Runs fn(i) for i in [0, n) on up to `threads` threads; returns the error of
// the lowest i that failed, so the error reported does not depend on timing.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace bert::data {

// 0 = one per core.
inline int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Items are taken in increasing order; after an error no new item starts.
// `fn` must be safe to call concurrently for different i.
inline absl::Status ParallelFor(size_t n, int threads,
                                const std::function<absl::Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status first;
  size_t first_index = n;
  auto work = [&] {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      absl::Status s = fn(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        // Every item below i has started (items are taken in order), so the
        // lowest failing index is well defined once all threads are done.
        if (i < first_index) {
          first_index = i;
          first = s;
        }
        failed = true;
      }
    }
  };
  int t = ResolveThreads(threads);
  if (static_cast<size_t>(t) > n) t = static_cast<int>(n);
  if (t <= 1) {
    work();
    return first;
  }
  std::vector<std::thread> pool;
  for (int k = 0; k < t; ++k) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  return first;
}

}  // namespace bert::data
