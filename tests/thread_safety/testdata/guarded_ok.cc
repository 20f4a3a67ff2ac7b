// Fixture for scripts/check-thread-safety.sh: correct locking, must pass.
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

class Counter {
 public:
  void Add(int n) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    AddLocked(n);
  }

 private:
  void AddLocked(int n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { total_ += n; }

  absl::Mutex mu_;
  int total_ ABSL_GUARDED_BY(mu_) = 0;
};

void Use(Counter& c) { c.Add(1); }
