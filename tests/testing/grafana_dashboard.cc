#include "tests/testing/grafana_dashboard.h"

#include <fstream>
#include <regex>

#include "nlohmann/json.hpp"

namespace bert::testing {

std::vector<std::string> DashboardExpressions(const std::string& path,
                                              const std::string& rate_interval) {
  std::ifstream in(path);
  const nlohmann::json dashboard = nlohmann::json::parse(in);
  std::vector<std::string> expressions;
  for (const auto& panel : dashboard.value("panels", nlohmann::json::array())) {
    if (!panel.contains("targets")) continue;
    for (const auto& target : panel["targets"]) {
      std::string expr = target.value("expr", "");
      expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), rate_interval);
      expr = std::regex_replace(expr, std::regex(R"(\$job_id)"), ".+");
      expressions.push_back(expr);
    }
  }
  return expressions;
}

}  // namespace bert::testing
