#include "client/cli_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bert::client {
namespace {

bool IsPathKey(const std::string& key) {
  return key == "token_file" || key == "tls_ca" || key == "tls_cert" || key == "tls_key";
}

std::string ExpandPath(const std::string& value, const std::string& config_path) {
  namespace fs = std::filesystem;
  if (value.rfind("~/", 0) == 0) {
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
      return (fs::path(home) / value.substr(2)).string();
    }
  }
  const fs::path path(value);
  if (path.is_absolute()) return value;
  return (fs::absolute(fs::path(config_path)).parent_path() / path).lexically_normal().string();
}

}  // namespace

const std::vector<std::string>& ConfigKeys() {
  static const std::vector<std::string>* keys = new std::vector<std::string>{
      "server", "token", "token_file", "tls_ca", "tls_cert", "tls_key", "output"};
  return *keys;
}

const CliConfigValue* CliConfig::Find(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? nullptr : &it->second;
}

std::string CliConfig::Where(const std::string& key) const {
  const CliConfigValue* value = Find(key);
  return value == nullptr ? path : absl::StrCat(path, ":", value->line);
}

std::string DefaultConfigPath() {
  namespace fs = std::filesystem;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    return (fs::path(xdg) / "bertctl" / "config.yaml").string();
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return (fs::path(home) / ".config" / "bertctl" / "config.yaml").string();
  }
  return "";
}

absl::StatusOr<CliConfig> ParseCliConfig(const std::string& text, const std::string& path,
                                         const std::vector<std::string>& allowed_outputs) {
  CliConfig config;
  config.path = path;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  if (!root || root.IsNull()) return config;  // an empty file sets nothing
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", root.Mark().line + 1, ": the file must be a map of settings (",
        absl::StrJoin(ConfigKeys(), ", "), ")"));
  }
  for (const auto& entry : root) {
    const int line = entry.first.Mark().line + 1;
    const std::string key = entry.first.Scalar();
    const auto& keys = ConfigKeys();
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", key,
                                                     ": unknown key (known: ",
                                                     absl::StrJoin(keys, ", "), ")"));
    }
    if (!entry.second.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", entry.second.Mark().line + 1, ": ", key, ": must be a single value"));
    }
    std::string value = entry.second.Scalar();
    if (value.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line, ": ", key, ": must not be empty"));
    }
    if (key == "output" &&
        std::find(allowed_outputs.begin(), allowed_outputs.end(), value) == allowed_outputs.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": output: '", value,
                                                     "' is not one of ",
                                                     absl::StrJoin(allowed_outputs, ", ")));
    }
    if (IsPathKey(key)) value = ExpandPath(value, path);
    config.values[key] = CliConfigValue{std::move(value), line};
  }
  if (config.Find("token") != nullptr && config.Find("token_file") != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(config.Where("token_file"),
                                                   ": token_file: set token or token_file, "
                                                   "not both (token is at line ",
                                                   config.Find("token")->line, ")"));
  }
  return config;
}

absl::StatusOr<CliConfig> LoadCliConfig(const std::string& path,
                                        const std::vector<std::string>& allowed_outputs) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  std::ifstream in(path);
  if (!in) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot read the config file"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseCliConfig(text, path, allowed_outputs);
}

}  // namespace bert::client
