#include "spec/yaml_scalar.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace bert::spec {
namespace {

// Removes '_' that sit between two digits; anything else is left for the
// parser to reject.
std::string StripDigitSeparators(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_' && i > 0 && i + 1 < text.size() && absl::ascii_isdigit(text[i - 1]) &&
        absl::ascii_isdigit(text[i + 1])) {
      continue;
    }
    out.push_back(text[i]);
  }
  return out;
}

// Only plain decimal notation: strtod alone would also take hex, "inf" and "nan".
bool LooksDecimal(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789+-.eE") == std::string::npos;
}

absl::Status RangeError(int64_t min, int64_t max) {
  return absl::OutOfRangeError(absl::StrCat("must be between ", min, " and ", max));
}

}  // namespace

absl::StatusOr<int64_t> ParseYamlInteger(const std::string& text, int64_t min, int64_t max) {
  const std::string clean = StripDigitSeparators(std::string(absl::StripAsciiWhitespace(text)));
  const auto type_error = [&] {
    return absl::InvalidArgumentError(absl::StrCat("expected an integer, got '", text, "'"));
  };
  if (!LooksDecimal(clean)) return type_error();
  const char* begin = clean.c_str();
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(begin, &end, 10);
  if (*end == '\0' && end != begin) {
    if (errno == ERANGE || value < min || value > max) return RangeError(min, max);
    return static_cast<int64_t>(value);
  }
  // "1e5", "2.0": accepted when the number is a whole one.
  end = nullptr;
  const double real = std::strtod(begin, &end);
  if (*end != '\0' || end == begin || !std::isfinite(real)) return type_error();
  if (real != std::floor(real)) {
    return absl::InvalidArgumentError(absl::StrCat("expected an integer, got '", text, "'"));
  }
  if (real < static_cast<double>(min) || real > static_cast<double>(max)) {
    return RangeError(min, max);
  }
  return static_cast<int64_t>(real);
}

absl::StatusOr<double> ParseYamlDouble(const std::string& text) {
  const std::string clean = StripDigitSeparators(std::string(absl::StripAsciiWhitespace(text)));
  const char* begin = clean.c_str();
  char* end = nullptr;
  const double value = std::strtod(begin, &end);
  if (!LooksDecimal(clean) || *end != '\0' || end == begin || !std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat("expected a number, got '", text, "'"));
  }
  return value;
}

absl::StatusOr<bool> ParseYamlBool(const std::string& text) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return absl::InvalidArgumentError(absl::StrCat("expected true or false, got '", text, "'"));
}

}  // namespace bert::spec
