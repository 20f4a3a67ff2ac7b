#include "agent/gang_rendezvous.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/failure.h"
#include "protocol/grpc_status.h"
#include "protocol/rendezvous.h"

namespace bert::agent {
namespace {

// One long-poll at most this long, so cancellation is noticed.
constexpr absl::Duration kPollSlice = absl::Seconds(5);
constexpr absl::Duration kRetryPause = absl::Milliseconds(500);

bool Transient(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded || s.code() == absl::StatusCode::kAborted;
}

std::unique_ptr<grpc::ClientContext> Context(const std::string& token, absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  return context;
}

std::string Name(const v1::AssignmentRef& ref) {
  return absl::StrCat(ref.job_id(), " attempt ", ref.attempt());
}

}  // namespace

absl::Status GrpcRendezvousChannel::Publish(const v1::AssignmentRef& ref, int port) {
  v1::PublishRendezvousRequest request;
  *request.mutable_ref() = ref;
  request.set_master_port(port);
  v1::PublishRendezvousResponse response;
  auto context = Context(token_, absl::Seconds(10));
  return protocol::FromGrpcStatus(stub_->PublishRendezvous(context.get(), request, &response));
}

absl::StatusOr<int> GrpcRendezvousChannel::Await(const v1::AssignmentRef& ref,
                                                 absl::Duration wait) {
  v1::AwaitRendezvousRequest request;
  *request.mutable_ref() = ref;
  request.set_wait_ms(absl::ToInt64Milliseconds(wait));
  v1::AwaitRendezvousResponse response;
  auto context = Context(token_, wait + absl::Seconds(10));
  absl::Status s =
      protocol::FromGrpcStatus(stub_->AwaitRendezvous(context.get(), request, &response));
  if (!s.ok()) return s;
  return response.master_port();
}

absl::StatusOr<v1::Rendezvous> ResolveRendezvous(const v1::AssignmentRef& ref,
                                                 v1::Rendezvous rendezvous,
                                                 RendezvousChannel* channel,
                                                 const std::function<bool()>& cancelled,
                                                 absl::Duration timeout) {
  if (!protocol::MasterChoosesPort(rendezvous)) return rendezvous;
  const bool spans_hosts = protocol::SpansHosts(rendezvous);
  if (spans_hosts && channel == nullptr) {
    return StageFailure(v1::INTERNAL, absl::StrCat("rendezvous of ", Name(ref),
                                                   ": a gang across hosts needs bertd"));
  }
  const absl::Time deadline = absl::Now() + timeout;
  auto gave_up = [&](const std::string& what, const absl::Status& last) -> absl::Status {
    if (cancelled()) return StageFailure(v1::CANCELLED_BY_USER, "cancelled");
    return StageFailure(v1::INTERNAL,
                        absl::StrCat("rendezvous of ", Name(ref), ": ", what,
                                     last.ok() ? "" : absl::StrCat(" (", last.message(), ")")));
  };

  if (rendezvous.node_rank() == 0) {
    absl::StatusOr<int> port = protocol::PickFreeRendezvousPort();
    if (!port.ok()) return gave_up("no free port on this host", port.status());
    rendezvous.set_master_port(*port);
    if (!spans_hosts) return rendezvous;
    for (;;) {
      absl::Status s = channel->Publish(ref, *port);
      if (s.ok()) return rendezvous;
      if (!Transient(s) || cancelled() || absl::Now() >= deadline) {
        return gave_up(absl::StrCat("publishing port ", *port, " failed"), s);
      }
      absl::SleepFor(kRetryPause);
    }
  }

  absl::Status last;
  while (!cancelled()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    absl::StatusOr<int> port = channel->Await(ref, std::min(left, kPollSlice));
    if (port.ok() && *port != protocol::kPortChosenByMaster) {
      if (absl::Status s = protocol::CheckRendezvousPort(*port); !s.ok()) return gave_up("bad port", s);
      rendezvous.set_master_port(*port);
      return rendezvous;
    }
    if (!port.ok()) {
      last = port.status();
      if (!Transient(last)) break;
      absl::SleepFor(kRetryPause);
    }
  }
  return gave_up(absl::StrCat("node 0 published no port within ", absl::FormatDuration(timeout)),
                 last);
}

}  // namespace bert::agent
