#include "client/text_format.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "protocol/stage_names.h"

namespace bert::client {

namespace {

std::string Json(const google::protobuf::Message& message, bool indent) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = indent;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return absl::StrCat("{\"error\": \"", std::string(status.message()), "\"}\n");
  return out;
}

// Emits `value` (protobuf's JSON, key order kept) into `out`.
void EmitYaml(const nlohmann::ordered_json& value, YAML::Emitter& out) {
  switch (value.type()) {
    case nlohmann::ordered_json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key << key << YAML::Value;
        EmitYaml(item, out);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::ordered_json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : value) EmitYaml(item, out);
      out << YAML::EndSeq;
      break;
    case nlohmann::ordered_json::value_t::string:
      out << value.get<std::string>();
      break;
    case nlohmann::ordered_json::value_t::boolean:
      out << value.get<bool>();
      break;
    case nlohmann::ordered_json::value_t::number_integer:
      out << value.get<int64_t>();
      break;
    case nlohmann::ordered_json::value_t::number_unsigned:
      out << value.get<uint64_t>();
      break;
    case nlohmann::ordered_json::value_t::number_float:
      out << value.get<double>();
      break;
    default:
      out << YAML::Null;
      break;
  }
}

}  // namespace

std::string ToYaml(const google::protobuf::Message& message) {
  const nlohmann::ordered_json value =
      nlohmann::ordered_json::parse(Json(message, false), nullptr, /*allow_exceptions=*/false);
  YAML::Emitter out;
  out.SetBoolFormat(YAML::TrueFalseBool);
  EmitYaml(value, out);
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out = Json(message, true);
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

std::string ToJsonLine(const google::protobuf::Message& message) {
  std::string out = Json(message, false);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out + "\n";
}

std::string TruncateColumns(const std::string& line, int columns) {
  int seen = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    // Count UTF-8 lead bytes (not 10xxxxxx continuation bytes).
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80 && ++seen > columns) {
      return line.substr(0, i);
    }
  }
  return line;
}

std::string StageName(bert::v1::StageKind kind) {
  if (kind == bert::v1::STAGE_KIND_UNSPECIFIED) return "job";  // job-wide lines
  return bert::protocol::StageName(kind);
}

std::string StateName(bert::v1::State state) {
  if (state == bert::v1::STATE_UNSPECIFIED) return "unknown";
  return absl::AsciiStrToLower(bert::v1::State_Name(state));
}

std::string CauseName(bert::v1::FailureCause cause) { return bert::v1::FailureCause_Name(cause); }

std::string FormatDuration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, (s % 86400) / 3600);
}

std::string FormatCount(double value) {
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e9) return absl::StrFormat("%.1fG", value / 1e9);
  if (magnitude >= 1e6) return absl::StrFormat("%.1fM", value / 1e6);
  if (magnitude >= 1e4) return absl::StrFormat("%.1fk", value / 1e3);
  if (magnitude == std::floor(magnitude)) return absl::StrFormat("%.0f", value);
  return absl::StrFormat("%.1f", value);
}

std::string FormatTime(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "";
  const std::time_t seconds = static_cast<std::time_t>(time.seconds());
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%S", &tm);
  return buffer;
}

std::string FormatProgressCounts(const bert::v1::Progress& progress) {
  std::string out = FormatCount(static_cast<double>(progress.done()));
  if (progress.total() > 0) absl::StrAppend(&out, "/", FormatCount(progress.total()));
  if (!progress.unit().empty()) absl::StrAppend(&out, " ", progress.unit());
  return out;
}

std::string ProgressBar(int64_t done, int64_t total, int width, bool unicode) {
  const double fraction = total > 0 ? std::clamp(static_cast<double>(done) / total, 0.0, 1.0) : 0;
  const int filled = static_cast<int>(std::floor(fraction * width));
  std::string out;
  for (int i = 0; i < width; ++i) {
    if (unicode) {
      out += i < filled ? "\u2588" : "\u2591";
    } else {
      out += i < filled ? '#' : '.';
    }
  }
  return out;
}

std::string Sparkline(const std::vector<double>& values, int width) {
  static const char* const kLevels[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                        "\u2585", "\u2586", "\u2587", "\u2588"};
  if (values.empty() || width <= 0) return "";
  const size_t begin = values.size() > static_cast<size_t>(width) ? values.size() - width : 0;
  const auto [lo, hi] = std::minmax_element(values.begin() + begin, values.end());
  std::string out;
  for (size_t i = begin; i < values.size(); ++i) {
    const double span = *hi - *lo;
    const int level = span > 0 ? static_cast<int>(std::lround((values[i] - *lo) / span * 7)) : 3;
    out += kLevels[std::clamp(level, 0, 7)];
  }
  return out;
}

}  // namespace bert::client
