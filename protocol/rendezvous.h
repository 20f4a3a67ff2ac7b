// The gang rendezvous, written once for bertd and bert-agent: where the ranks
// of a pre-training gang meet (rank 0's c10d TCPStore) and who picks its port.
//
// The port is chosen on the master host, never by the controller, as
// torchrun's elastic agent does (it binds port 0 on rank 0's host and shares
// the port through its rendezvous): bertd hands every member of a gang an
// assignment whose Rendezvous.master_port is kPortChosenByMaster. The agent of
// node 0 asks its kernel for a free port (PickFreeRendezvousPort) and, when the
// gang spans hosts, publishes it to bertd (AgentService.PublishRendezvous); the
// other members wait for it (AgentService.AwaitRendezvous). Should another
// process take the port between the pick and rank 0's bind, rank 0 fails like
// any rank, the whole gang restarts, and node 0 picks again.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/agent_service.pb.h"

namespace bert::protocol {

// Rendezvous.master_port of every assignment bertd builds.
inline constexpr int32_t kPortChosenByMaster = 0;

// True when node 0's agent must choose the port (master_port is kPortChosenByMaster).
bool MasterChoosesPort(const v1::Rendezvous& rendezvous);

// True when the gang's ranks live on more than one host (world_size >
// local_world_size): the chosen port must then be published and awaited.
bool SpansHosts(const v1::Rendezvous& rendezvous);

// OK for 1..65535; INVALID_ARGUMENT naming `port` otherwise.
absl::Status CheckRendezvousPort(int64_t port);

// A TCP port free on this host for every address (what c10d's TCPStore binds:
// the wildcard address, IPv6 dual-stack where available, else IPv4), chosen
// by the kernel. UNAVAILABLE with errno's text when no socket can be bound.
absl::StatusOr<int> PickFreeRendezvousPort();

}  // namespace bert::protocol
