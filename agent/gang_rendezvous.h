// How this host's ranks learn where their gang meets (protocol/rendezvous.h):
// the agent of node 0 picks a port free on its own host and, for a gang across
// hosts, publishes it through bertd; the agents of the other nodes wait for it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bert/v1/agent_service.grpc.pb.h"

namespace bert::agent {

// bertd's side of the rendezvous as an agent sees it (a fake in tests).
class RendezvousChannel {
 public:
  virtual ~RendezvousChannel() = default;
  // Records the port node 0 chose for `ref`'s attempt.
  virtual absl::Status Publish(const v1::AssignmentRef& ref, int port) = 0;
  // The port published for `ref`'s attempt, or 0 when none came within `wait`.
  virtual absl::StatusOr<int> Await(const v1::AssignmentRef& ref, absl::Duration wait) = 0;
};

// Over AgentService (PublishRendezvous, AwaitRendezvous) with the agent's
// bearer token. Thread-safe.
class GrpcRendezvousChannel final : public RendezvousChannel {
 public:
  GrpcRendezvousChannel(std::shared_ptr<v1::AgentService::Stub> stub, std::string token)
      : stub_(std::move(stub)), token_(std::move(token)) {}
  absl::Status Publish(const v1::AssignmentRef& ref, int port) override;
  absl::StatusOr<int> Await(const v1::AssignmentRef& ref, absl::Duration wait) override;

 private:
  std::shared_ptr<v1::AgentService::Stub> stub_;
  std::string token_;
};

// `rendezvous` with its port filled in: as given when bertd set one; else
// picked here on node 0 (and published when the gang spans hosts), or awaited
// on the other nodes. Transient errors of `channel` are retried. Fails
// (a StageFailure) with INTERNAL when the port does not arrive within
// `timeout`, with CANCELLED_BY_USER once `cancelled()` says so. `channel` may
// be null for a gang on one host.
absl::StatusOr<v1::Rendezvous> ResolveRendezvous(const v1::AssignmentRef& ref,
                                                 v1::Rendezvous rendezvous,
                                                 RendezvousChannel* channel,
                                                 const std::function<bool()>& cancelled,
                                                 absl::Duration timeout);

}  // namespace bert::agent
