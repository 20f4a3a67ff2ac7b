#include "server/rpc_guard.h"

#include "absl/time/clock.h"
#include "protocol/grpc_status.h"

namespace bert::server {

grpc::Status RpcGuard::Run(grpc::ServerContext* context, std::string_view method,
                           const std::function<absl::Status(const Principal&)>& body) const {
  const absl::Time start = absl::Now();
  absl::Status status;
  absl::StatusOr<Principal> who = auth_->Authorize(method, *context);
  if (!who.ok()) {
    status = who.status();
  } else {
    status = body(*who);
  }
  if (metrics_ != nullptr) {
    metrics_->ObserveRpc(method, static_cast<int>(status.code()),
                         absl::ToDoubleSeconds(absl::Now() - start));
  }
  return protocol::ToGrpcStatus(status);
}

}  // namespace bert::server
