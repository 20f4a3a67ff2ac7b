// bertctl's config file: ~/.config/bertctl/config.yaml (under
// $XDG_CONFIG_HOME when set), or the file of --config / BERTCTL_CONFIG.
//
//   server: bertd.example.com:7070
//   token_file: ~/.config/bertctl/token   # or token: ...
//   tls_ca: ca.pem                        # relative paths: to this file's directory
//   tls_cert: client.pem
//   tls_key: client.key
//   output: text                          # text | json | yaml | wide
//
// Every key is optional; an unknown key, a value that is not a plain scalar,
// or YAML that does not parse is an error naming the file, line and key.
// Precedence (cli_context.cc): flag > environment > this file > default.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace bert::client {

// The keys the file may hold, in the order `bertctl config view` shows them.
const std::vector<std::string>& ConfigKeys();

struct CliConfigValue {
  std::string value;
  int line = 0;  // 1-based, in `CliConfig::path`
};

struct CliConfig {
  std::string path;                              // "" when no file was read
  std::map<std::string, CliConfigValue> values;  // key -> value
  const CliConfigValue* Find(const std::string& key) const;
  // "FILE:LINE" of `key`, for messages and `config view`.
  std::string Where(const std::string& key) const;
};

// The file bertctl reads when neither --config nor BERTCTL_CONFIG names one:
// $XDG_CONFIG_HOME/bertctl/config.yaml, else $HOME/.config/bertctl/config.yaml
// ("" when neither variable is set).
std::string DefaultConfigPath();

// Parses `text` (read from `path`, which names it in errors). Paths
// (token_file, tls_*) are made absolute against the file's directory, and a
// leading "~/" against $HOME. `allowed_outputs`: what `output` may be.
absl::StatusOr<CliConfig> ParseCliConfig(const std::string& text, const std::string& path,
                                         const std::vector<std::string>& allowed_outputs);
// Reads and parses `path`. A missing file is NotFound (callers decide whether
// that is an error: it is for an explicit --config, not for the default).
absl::StatusOr<CliConfig> LoadCliConfig(const std::string& path,
                                        const std::vector<std::string>& allowed_outputs);

}  // namespace bert::client
