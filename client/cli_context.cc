#include "client/cli_context.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <iterator>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli_config.h"
#include "client/text_format.h"

namespace bert::client {

namespace {

// The global flags' CLI11 options: a flag given on the command line wins
// over the environment and the config file.
struct GlobalFlags {
  CLI::Option* server = nullptr;
  CLI::Option* token = nullptr;
  CLI::Option* token_file = nullptr;
  CLI::Option* tls_ca = nullptr;
  CLI::Option* tls_cert = nullptr;
  CLI::Option* tls_key = nullptr;
  CLI::Option* output = nullptr;
  CLI::Option* config = nullptr;
};

GlobalFlags& Flags() {
  static GlobalFlags* flags = new GlobalFlags();
  return *flags;
}

struct Resolution {
  bool done = false;
  std::string config_read;  // the config file read, "" when none
  std::vector<EffectiveSetting> settings;
};

Resolution& Resolved() {
  static Resolution* resolution = new Resolution();
  return *resolution;
}

std::string Getenv(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

bool Given(const CLI::Option* flag) { return flag != nullptr && flag->count() > 0; }

// Sets `*value` from the first of flag, environment, config file that has
// it (else leaves the default) and records where it came from.
void ResolveOne(const std::string& key, const CLI::Option* flag, const char* env,
                const CliConfig& config, std::string* value) {
  std::string source = "default";
  if (Given(flag)) {
    source = "flag " + flag->get_name();
  } else if (const std::string from_env = Getenv(env); !from_env.empty()) {
    *value = from_env;
    source = absl::StrCat("env ", env);
  } else if (const CliConfigValue* from_file = config.Find(key); from_file != nullptr) {
    *value = from_file->value;
    source = config.Where(key);
  }
  Resolved().settings.push_back({key, *value, source});
}

// The credential: token and token_file together, the first level (flag,
// environment, config file) that sets either wins, a token over a token file.
void ResolveToken(const CliConfig& config, CliContext& cli) {
  const GlobalFlags& flags = Flags();
  std::string token_source = "default";
  std::string file_source = "default";
  if (Given(flags.token) || Given(flags.token_file)) {
    if (Given(flags.token)) {
      token_source = "flag --token";
      cli.token_file.clear();
    } else {
      file_source = "flag --token-file";
    }
  } else if (!Getenv("BERTCTL_TOKEN").empty()) {
    cli.client.token = Getenv("BERTCTL_TOKEN");
    token_source = "env BERTCTL_TOKEN";
  } else if (!Getenv("BERTCTL_TOKEN_FILE").empty()) {
    cli.token_file = Getenv("BERTCTL_TOKEN_FILE");
    file_source = "env BERTCTL_TOKEN_FILE";
  } else if (const CliConfigValue* token = config.Find("token"); token != nullptr) {
    cli.client.token = token->value;
    token_source = config.Where("token");
  } else if (const CliConfigValue* file = config.Find("token_file"); file != nullptr) {
    cli.token_file = file->value;
    file_source = config.Where("token_file");
  }
  const std::string shown = cli.client.token.empty() ? "" : "<redacted>";
  Resolved().settings.push_back({"token", shown, token_source});
  Resolved().settings.push_back({"token_file", cli.token_file, file_source});
}

bool IsOutputFormat(const std::string& name) {
  const auto& names = OutputFormatNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

CliContext& GlobalCli() {
  static CliContext* context = new CliContext();
  return *context;
}

const std::vector<std::string>& OutputFormatNames() {
  static const std::vector<std::string>* names =
      new std::vector<std::string>{"text", "json", "yaml", "wide"};
  return *names;
}

OutputFormat CliContext::format() const {
  ResolveSettings();
  if (output == "json") return OutputFormat::kJson;
  if (output == "yaml") return OutputFormat::kYaml;
  if (output == "wide") return OutputFormat::kWide;
  return OutputFormat::kText;
}

void ResolveSettings() {
  Resolution& resolved = Resolved();
  if (resolved.done) return;
  resolved.done = true;  // set first: Fail() below must not recurse into here
  CliContext& cli = GlobalCli();
  const GlobalFlags& flags = Flags();

  // Which config file: --config, BERTCTL_CONFIG, else the default path (which may be absent).
  std::string path = cli.config_file;
  bool explicit_path = Given(flags.config);
  if (!explicit_path && !Getenv("BERTCTL_CONFIG").empty()) {
    path = Getenv("BERTCTL_CONFIG");
    explicit_path = true;
  }
  if (!explicit_path) path = DefaultConfigPath();
  CliConfig config;
  if (!path.empty()) {
    absl::StatusOr<CliConfig> loaded = LoadCliConfig(path, OutputFormatNames());
    if (loaded.ok()) {
      config = std::move(*loaded);
      resolved.config_read = path;
    } else if (explicit_path || loaded.status().code() != absl::StatusCode::kNotFound) {
      Fail(kExitUsage, absl::StrCat("config file ", loaded.status().message()));
    }
  }

  ResolveOne("server", flags.server, "BERTCTL_SERVER", config, &cli.client.address);
  ResolveToken(config, cli);
  ResolveOne("tls_ca", flags.tls_ca, "BERTCTL_TLS_CA", config, &cli.client.tls_ca_file);
  ResolveOne("tls_cert", flags.tls_cert, "BERTCTL_TLS_CERT", config, &cli.client.tls_cert_file);
  ResolveOne("tls_key", flags.tls_key, "BERTCTL_TLS_KEY", config, &cli.client.tls_key_file);
  ResolveOne("output", flags.output, "BERTCTL_OUTPUT", config, &cli.output);
  if (!IsOutputFormat(cli.output)) {
    Fail(kExitUsage, absl::StrCat("BERTCTL_OUTPUT: '", cli.output, "' is not one of ",
                                  absl::StrJoin(OutputFormatNames(), ", ")));
  }
  for (const auto& [key, file] : {std::pair<const char*, const std::string*>{
                                      "tls_ca", &cli.client.tls_ca_file},
                                  {"tls_cert", &cli.client.tls_cert_file},
                                  {"tls_key", &cli.client.tls_key_file},
                                  {"token_file", &cli.token_file}}) {
    std::error_code ec;
    if (!file->empty() && !std::filesystem::is_regular_file(*file, ec)) {
      std::string source;
      for (const EffectiveSetting& setting : resolved.settings) {
        if (setting.key == key) source = setting.source;
      }
      Fail(kExitUsage, absl::StrCat(key, " ", *file, " (from ", source, "): no such file"));
    }
  }
}

std::vector<EffectiveSetting> EffectiveSettings(std::string* config_file_read) {
  ResolveSettings();
  if (config_file_read != nullptr) *config_file_read = Resolved().config_read;
  return Resolved().settings;
}

bool PrintStructured(const google::protobuf::Message& message) {
  const CliContext& cli = GlobalCli();
  if (cli.json()) {
    std::cout << ToJson(message);
  } else if (cli.yaml()) {
    std::cout << ToYaml(message);
  } else {
    return false;
  }
  return true;
}

bool PrintStructuredItem(const google::protobuf::Message& message) {
  const CliContext& cli = GlobalCli();
  if (cli.json()) {
    std::cout << ToJsonLine(message);
  } else if (cli.yaml()) {
    std::cout << "---\n" << ToYaml(message);
  } else {
    return false;
  }
  std::cout << std::flush;
  return true;
}

void AddGlobalOptions(CLI::App& app) {
  CliContext& cli = GlobalCli();
  GlobalFlags& flags = Flags();
  flags.server = app.add_option("--server,-s", cli.client.address,
                                "bertd address HOST:PORT (env BERTCTL_SERVER, config: server)")
                     ->capture_default_str();
  flags.token = app.add_option("--token", cli.client.token,
                               "bearer token sent to bertd (env BERTCTL_TOKEN, config: token)");
  flags.token_file = app.add_option("--token-file", cli.token_file,
                                    "file holding the bearer token, keeps it off the command "
                                    "line (env BERTCTL_TOKEN_FILE, config: token_file)");
  flags.tls_ca = app.add_option("--tls-ca", cli.client.tls_ca_file,
                                "CA certificate (PEM) to verify bertd; enables TLS (env "
                                "BERTCTL_TLS_CA, config: tls_ca)");
  flags.tls_cert = app.add_option("--tls-cert", cli.client.tls_cert_file,
                                  "client certificate (PEM) for mutual TLS (env BERTCTL_TLS_CERT, "
                                  "config: tls_cert)");
  flags.tls_key = app.add_option("--tls-key", cli.client.tls_key_file,
                                 "client key (PEM) for mutual TLS (env BERTCTL_TLS_KEY, config: "
                                 "tls_key)");
  app.add_option("--timeout-ms", cli.client.timeout_ms, "deadline of each request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  flags.output = app.add_option("--output,-o", cli.output,
                                "output format: text, json, yaml or wide (env BERTCTL_OUTPUT, "
                                "config: output)")
                     ->check(CLI::IsMember(OutputFormatNames()))
                     ->capture_default_str();
  flags.config = app.add_option("--config", cli.config_file,
                                "config file (env BERTCTL_CONFIG; default "
                                "$XDG_CONFIG_HOME/bertctl/config.yaml or "
                                "~/.config/bertctl/config.yaml)");
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
  ResolveSettings();
  CliContext& cli = GlobalCli();
  if (cli.client.token.empty() && !cli.token_file.empty()) {
    std::ifstream in(cli.token_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cli.client.token = std::string(absl::StripAsciiWhitespace(text));
    if (cli.client.token.empty()) Fail(kExitUsage, "token file " + cli.token_file + ": no token in it");
  }
  auto client = BertClient::Create(cli.client);
  if (!client.ok()) Fail(client.status());
  return std::move(*client);
}

}  // namespace bert::client
