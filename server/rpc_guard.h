// The one wrapper every RPC handler runs in: authorizes the caller (auth.h),
// runs the body, converts its absl::Status, and records the call's latency.
#pragma once

#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "metrics/controller_metrics.h"
#include "server/auth.h"

namespace bert::server {

// Thread-safe; `auth` and `metrics` (may be null) must outlive it.
class RpcGuard {
 public:
  RpcGuard(const Authorizer* auth, metrics::ControllerMetrics* metrics)
      : auth_(auth), metrics_(metrics) {}

  grpc::Status Run(grpc::ServerContext* context, std::string_view method,
                   const std::function<absl::Status(const Principal&)>& body) const;

 private:
  const Authorizer* auth_;
  metrics::ControllerMetrics* metrics_;
};

}  // namespace bert::server
