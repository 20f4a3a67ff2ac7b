// The PromQL expressions of a Grafana dashboard (deploy/grafana/*.json), for
// tests that check them against exported metrics or a real Prometheus.
#pragma once

#include <string>
#include <vector>

namespace bert::testing {

// Every panel target's `expr` in the dashboard JSON at `path`, with Grafana's
// variables resolved for a query outside Grafana: $__rate_interval becomes
// `rate_interval` (e.g. "5m") and $job_id matches every job. Throws
// nlohmann::json::parse_error when the file is missing or not JSON.
std::vector<std::string> DashboardExpressions(const std::string& path,
                                              const std::string& rate_interval);

}  // namespace bert::testing
