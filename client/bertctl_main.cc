// bertctl: the command line of bertd. Global flags (server, token, TLS,
// output) are in cli_context.cc; each component registers its own verbs
// (commands.h). Exit codes: 0 ok, 1 failure, 2 usage or invalid input,
// 3 server unreachable, 4 not found, 5 permission denied.
#include <CLI/CLI.hpp>
#include <iostream>

#include "client/cli_context.h"
#include "client/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"bertctl: pre-train BERT models with bertd"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the verb
  app.footer(
      "Settings: flag > environment (BERTCTL_SERVER, BERTCTL_TOKEN, BERTCTL_TOKEN_FILE, ...) >\n"
      "config file ($XDG_CONFIG_HOME/bertctl/config.yaml, --config, BERTCTL_CONFIG) > default.\n"
      "See `bertctl config view`, `bertctl completion bash|zsh`, docs/cli.md.\n\n"
      "Exit codes:\n"
      "  0  ok (watch, submit --watch: the job succeeded)\n"
      "  1  failure (watch: the job failed or was cancelled)\n"
      "  2  usage error or invalid input (bad flag, spec, config file)\n"
      "  3  bertd unreachable (watch, logs -f: gave up reconnecting after --reconnect-timeout)\n"
      "  4  not found\n"
      "  5  permission denied");
  bert::client::AddGlobalOptions(app);
  bert::client::RegisterJobCommands(app);
  bert::client::RegisterPullCommand(app);
  bert::client::RegisterLifecycleCommands(app);
  bert::client::RegisterCliCommands(app);
#ifdef BERTCTL_HAS_TOKENIZER_COMMANDS
  bert::client::RegisterTokenizerCommands(app);
#endif
#ifdef BERTCTL_HAS_DATASET_COMMANDS
  bert::client::RegisterDatasetCommands(app);
#endif
#ifdef BERTCTL_HAS_PREDICT_COMMAND
  bert::client::RegisterPredictCommand(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command failed; it printed why
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return bert::client::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "bertctl: " << e.what() << std::endl;
    return bert::client::kExitFailure;
  }
  return bert::client::kExitOk;
}
