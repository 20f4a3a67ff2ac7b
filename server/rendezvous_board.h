// Where the members of a pre-training gang learn the port node 0 chose on its
// host (protocol/rendezvous.h): node 0's agent publishes it for its attempt,
// the other members' agents wait for it. The caller checks that each ref is
// the caller's live piece (JobManager::CheckLive) before it gets here.
//
// In memory only: a controller restart between the publish and a member's
// wait leaves that member waiting until its rendezvous timeout, when it fails
// and the whole gang restarts with a new port. Thread-safe.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bert/v1/agent_service.pb.h"

namespace bert::server {

class RendezvousBoard {
 public:
  // Records the port of `ref`'s attempt; `ref` must be node 0 (shard 0) of a
  // PRETRAIN gang and the port 1..65535 (INVALID_ARGUMENT otherwise). A newer
  // attempt replaces an older one; publishing an older one changes nothing.
  absl::Status Publish(const v1::AssignmentRef& ref, int port) ABSL_LOCKS_EXCLUDED(mu_);

  // The port published for `ref`'s job and attempt, waiting up to `wait`
  // (real time) for it; 0 when none arrived.
  int Await(const v1::AssignmentRef& ref, absl::Duration wait) ABSL_LOCKS_EXCLUDED(mu_);

  // Entries older than this go at the next publish (one per job, so the
  // board stays as small as the set of jobs that trained recently).
  static constexpr absl::Duration kKeep = absl::Hours(24);

 private:
  struct Entry {
    int32_t attempt = 0;
    int port = 0;
    absl::Time published;
  };
  absl::Mutex mu_;
  std::map<std::string, Entry> by_job_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bert::server
