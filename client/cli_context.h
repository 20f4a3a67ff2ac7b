// bertctl's global flags (server, token, TLS, output format) and how a
// command reports failure, shared by every command file (see commands.h).
#pragma once

#include <memory>
#include <string>

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

// Filled by CLI11 while parsing, before any command's callback runs.
struct CliContext {
  ClientOptions client;         // --server/BERTCTL_SERVER, --token/BERTCTL_TOKEN, --tls-*
  std::string token_file;       // --token-file/BERTCTL_TOKEN_FILE: read by ConnectOrFail
  std::string output = "text";  // --output text|json
  bool json() const { return output == "json"; }
};

// The process's context; bertctl is single-threaded.
CliContext& GlobalCli();

// Adds --server, --token, --token-file, --tls-ca, --tls-cert, --tls-key, --timeout and
// --output to `app` (and, via fallthrough, after any subcommand).
void AddGlobalOptions(CLI::App& app);

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
