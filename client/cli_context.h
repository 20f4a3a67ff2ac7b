// bertctl's global flags (server, token, TLS, output format) and how a
// command reports failure, shared by every command file (see commands.h).
//
// Settings come from, in this order of precedence: the flag, the environment
// (BERTCTL_SERVER, BERTCTL_TOKEN, BERTCTL_TOKEN_FILE, BERTCTL_TLS_CA,
// BERTCTL_TLS_CERT, BERTCTL_TLS_KEY, BERTCTL_OUTPUT), the config file
// (cli_config.h), the default. They are resolved on first use (ConnectOrFail,
// format()), after CLI11 has parsed the command line.
#pragma once

#include <google/protobuf/message.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/bert_client.h"

namespace CLI {
class App;
}

namespace bert::client {

// Exit codes (commands.h): 0 ok, 1 failure, 2 usage or invalid input,
// 3 server unreachable, 4 not found, 5 permission denied.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 2,
  kExitUnreachable = 3,
  kExitNotFound = 4,
  kExitPermissionDenied = 5,
};

// What --output (-o, BERTCTL_OUTPUT, the config file's `output`) selects:
// text tables, protobuf JSON, the same data as YAML, or tables with more columns.
enum class OutputFormat { kText, kJson, kYaml, kWide };
// "text", "json", "yaml", "wide": the values -o accepts (anything else is a
// usage error naming these).
const std::vector<std::string>& OutputFormatNames();

// Filled by CLI11 while parsing, then by ResolveSettings() from the
// environment and the config file.
struct CliContext {
  ClientOptions client;         // --server, --token, --tls-*
  std::string token_file;       // --token-file: read by ConnectOrFail
  std::string output = "text";  // --output text|json|yaml|wide
  std::string config_file;      // --config / BERTCTL_CONFIG ("" = the default path)
  // The output format, the one place that decides it (resolves settings first).
  OutputFormat format() const;
  bool json() const { return format() == OutputFormat::kJson; }
  bool yaml() const { return format() == OutputFormat::kYaml; }
  bool wide() const { return format() == OutputFormat::kWide; }
  // JSON or YAML: the command prints the response message, not a table.
  bool structured() const { return json() || yaml(); }
};

// The process's context; bertctl is single-threaded.
CliContext& GlobalCli();

// Adds --server, --token, --token-file, --tls-ca, --tls-cert, --tls-key,
// --timeout-ms, --output and --config to `app` (and, via fallthrough, after
// any subcommand).
void AddGlobalOptions(CLI::App& app);

// Fills what no flag set from the environment, then the config file, then
// the defaults; Fail()s (exit 2) on a bad config file or value. Idempotent.
void ResolveSettings();

// One effective setting, for `bertctl config view`.
struct EffectiveSetting {
  std::string key;     // the config file's key: "server", "token", ...
  std::string value;   // the token redacted
  std::string source;  // "flag --server", "env BERTCTL_SERVER", "FILE:LINE", "default"
};
// The effective settings (resolving them first), and the config file read
// ("" when none).
std::vector<EffectiveSetting> EffectiveSettings(std::string* config_file_read);

// For read verbs: prints `message` as JSON or YAML when -o asks for one and
// returns true; returns false for text and wide (the caller draws its table).
bool PrintStructured(const google::protobuf::Message& message);
// The same for one item of a stream (watch, logs): one JSON object per line,
// or one YAML document ("---") per item.
bool PrintStructuredItem(const google::protobuf::Message& message);

int ExitCodeFor(const absl::Status& status);

// Prints "bertctl: <message>" to stderr and throws CLI::RuntimeError with the
// matching exit code.
[[noreturn]] void Fail(const absl::Status& status);
[[noreturn]] void Fail(int exit_code, const std::string& message);
// Ends the command with `exit_code` without printing (the output said why).
[[noreturn]] void ExitWith(int exit_code);

// A client for the global options (the token read from --token-file when
// --token is not given), or Fail()s.
std::unique_ptr<BertClient> ConnectOrFail();

}  // namespace bert::client
