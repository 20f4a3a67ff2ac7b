// Fixture for scripts/check-thread-safety.sh: writes a guarded member without
// its lock, and calls a function that needs the lock without it. Must fail.
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

class Counter {
 public:
  void Add(int n) { total_ += n; }  // no lock held
  void Reset() { ResetLocked(); }   // no lock held

 private:
  void ResetLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { total_ = 0; }

  absl::Mutex mu_;
  int total_ ABSL_GUARDED_BY(mu_) = 0;
};

void Use(Counter& c) {
  c.Add(1);
  c.Reset();
}

// Takes two mutexes against their declared order (-Wthread-safety-beta).
class Pair {
 public:
  void Both() {
    absl::MutexLock second(&second_);
    absl::MutexLock first(&first_);
  }

 private:
  absl::Mutex first_ ABSL_ACQUIRED_BEFORE(second_);
  absl::Mutex second_;
};
