#include "server/rendezvous_board.h"

#include "absl/strings/str_cat.h"
#include "protocol/rendezvous.h"

namespace bert::server {

absl::Status RendezvousBoard::Publish(const v1::AssignmentRef& ref, int port) {
  if (ref.stage() != v1::PRETRAIN || ref.shard_index() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous of job '", ref.job_id(), "': only node 0 of the pre-training gang "
                     "publishes its port, not ", v1::StageKind_Name(ref.stage()), " piece ",
                     ref.shard_index()));
  }
  if (absl::Status s = protocol::CheckRendezvousPort(port); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous of job '", ref.job_id(), "': ", s.message()));
  }
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  std::erase_if(by_job_, [&](const auto& entry) { return entry.second.published + kKeep < now; });
  Entry& entry = by_job_[ref.job_id()];
  if (entry.attempt > ref.attempt()) return absl::OkStatus();
  entry = Entry{ref.attempt(), port, now};
  return absl::OkStatus();
}

int RendezvousBoard::Await(const v1::AssignmentRef& ref, absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  int port = 0;
  auto published = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = by_job_.find(ref.job_id());
    if (it == by_job_.end() || it->second.attempt != ref.attempt()) return false;
    port = it->second.port;
    return true;
  };
  mu_.AwaitWithTimeout(absl::Condition(&published), wait);
  return port;
}

}  // namespace bert::server
