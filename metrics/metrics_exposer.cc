#include "metrics/metrics_exposer.h"

#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace bert::metrics {
namespace {

// Checks "HOST:PORT", "[V6]:PORT" or "PORT" before civetweb sees it, so a
// typo is reported as such rather than as a bind failure.
absl::Status ValidateListenAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  const std::string port = colon == std::string::npos ? address : address.substr(colon + 1);
  int value = -1;
  if (port.empty() || !absl::SimpleAtoi(port, &value) || value < 0 || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen \"", address,
                     "\": expected HOST:PORT or PORT with a port from 0 to 65535"));
  }
  if (colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen \"", address, "\": empty host before the port"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsExposer>> MetricsExposer::Start(
    const std::string& listen_address,
    const std::vector<std::shared_ptr<prometheus::Registry>>& registries) {
  if (absl::Status status = ValidateListenAddress(listen_address); !status.ok()) return status;
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // 2 threads: scrapes are rare and cheap.
    exposer = std::make_unique<prometheus::Exposer>(listen_address, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen_address, ": ", e.what()));
  }
  std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics: no port bound for ", listen_address));
  }
  std::unique_ptr<MetricsExposer> result(new MetricsExposer(std::move(exposer), ports.front()));
  for (const auto& registry : registries) {
    result->registries_.push_back(registry);
    result->exposer_->RegisterCollectable(registry);
  }
  return result;
}

std::string SerializeMetrics(const std::vector<std::shared_ptr<prometheus::Registry>>& registries) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& registry : registries) {
    std::vector<prometheus::MetricFamily> collected = registry->Collect();
    families.insert(families.end(), collected.begin(), collected.end());
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace bert::metrics
