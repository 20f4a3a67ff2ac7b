// Typed reading of YAML scalars, with messages that quote what was written.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace bert::spec {

// Decimal integers, with '_' digit separators ("32_000") and integral
// scientific notation ("1e5"). Errors: "expected an integer, got 'abc'",
// "must be between MIN and MAX".
absl::StatusOr<int64_t> ParseYamlInteger(const std::string& text, int64_t min, int64_t max);
// Finite numbers ("5e-5", "0.15"). Error: "expected a number, got 'x'".
absl::StatusOr<double> ParseYamlDouble(const std::string& text);
// true/false, yes/no, on/off (any case). Error: "expected true or false, got 'x'".
absl::StatusOr<bool> ParseYamlBool(const std::string& text);

}  // namespace bert::spec
