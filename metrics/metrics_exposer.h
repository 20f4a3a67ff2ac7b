// Serves a metrics registry over HTTP at /metrics (Prometheus text format),
// on the address given by bertd's and bert-agent's --metrics-listen flag.
//
// Uses prometheus-cpp's civetweb server, which starts threads that fail in a
// process that has loaded Debian's libtorch: never use it beside libtorch.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace bert::metrics {

class MetricsExposer {
 public:
  // Listens on `listen_address`: "HOST:PORT" ("127.0.0.1:9464",
  // "0.0.0.0:9464", "[::]:9464") or "PORT"; port 0 picks a free port. Serves
  // `registries` (kept alive by the exposer) at /metrics until destroyed.
  // InvalidArgument for a malformed address, Unavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<MetricsExposer>> Start(
      const std::string& listen_address,
      const std::vector<std::shared_ptr<prometheus::Registry>>& registries);

  // The port actually bound (useful with port 0).
  int port() const { return port_; }

 private:
  MetricsExposer(std::unique_ptr<prometheus::Exposer> exposer, int port)
      : exposer_(std::move(exposer)), port_(port) {}

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::vector<std::shared_ptr<prometheus::Registry>> registries_;
  int port_;
};

// The registries' metrics in the Prometheus text exposition format.
std::string SerializeMetrics(const std::vector<std::shared_ptr<prometheus::Registry>>& registries);

}  // namespace bert::metrics
