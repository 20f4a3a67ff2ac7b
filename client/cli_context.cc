#include "client/cli_context.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <iterator>

#include "absl/strings/ascii.h"

namespace bert::client {

CliContext& GlobalCli() {
  static CliContext* context = new CliContext();
  return *context;
}

void AddGlobalOptions(CLI::App& app) {
  CliContext& cli = GlobalCli();
  app.add_option("--server,-s", cli.client.address, "bertd address HOST:PORT")
      ->envname("BERTCTL_SERVER")
      ->capture_default_str();
  app.add_option("--token", cli.client.token, "bearer token sent to bertd")
      ->envname("BERTCTL_TOKEN");
  app.add_option("--token-file", cli.token_file,
                 "file holding the bearer token (keeps it off the command line)")
      ->envname("BERTCTL_TOKEN_FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-ca", cli.client.tls_ca_file,
                 "CA certificate (PEM) to verify bertd; enables TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-cert", cli.client.tls_cert_file, "client certificate (PEM) for mutual TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", cli.client.tls_key_file, "client key (PEM) for mutual TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--timeout-ms", cli.client.timeout_ms, "deadline of each request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--output,-o", cli.output, "output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return kExitUsage;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return kExitPermissionDenied;
    default:
      return kExitFailure;
  }
}

void Fail(int exit_code, const std::string& message) {
  std::cerr << "bertctl: " << message << std::endl;
  throw CLI::RuntimeError(exit_code);
}

void ExitWith(int exit_code) { throw CLI::RuntimeError(exit_code); }

void Fail(const absl::Status& status) {
  std::string message(status.message());
  if (status.code() == absl::StatusCode::kUnavailable) {
    message = "cannot reach bertd at " + GlobalCli().client.address + ": " + message;
  } else if (status.code() == absl::StatusCode::kUnauthenticated ||
             status.code() == absl::StatusCode::kPermissionDenied) {
    message = "permission denied: " + message +
              " (set --token-file, BERTCTL_TOKEN_FILE, --token or BERTCTL_TOKEN)";
  }
  Fail(ExitCodeFor(status), message);
}

std::unique_ptr<BertClient> ConnectOrFail() {
  CliContext& cli = GlobalCli();
  if (cli.client.token.empty() && !cli.token_file.empty()) {
    std::ifstream in(cli.token_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cli.client.token = std::string(absl::StripAsciiWhitespace(text));
    if (cli.client.token.empty()) Fail(kExitUsage, "--token-file " + cli.token_file + ": no token in it");
  }
  auto client = BertClient::Create(cli.client);
  if (!client.ok()) Fail(client.status());
  return std::move(*client);
}

}  // namespace bert::client
