// bertctl's subcommands, one registration function per file, so each
// component's commands sit beside the others without a central switch.
//
// A command's callback reports failure by throwing CLI::RuntimeError(exit_code)
// after printing a message to stderr. Exit codes: 0 ok, 1 failure, 2 usage or
// invalid input, 3 server unreachable, 4 not found, 5 permission denied.
#pragma once

namespace CLI {
class App;
}

namespace bert::client {

void RegisterJobCommands(CLI::App& app);        // job_commands.cc: validate submit list get watch logs cancel agents checkpoints metrics
void RegisterTokenizerCommands(CLI::App& app);  // tokenizer_commands.cc: tokenize, tokenizer train
void RegisterDatasetCommands(CLI::App& app);    // dataset_commands.cc: dataset inspect
void RegisterPredictCommand(CLI::App& app);     // predict_command.cc: predict (runs bert-worker)
void RegisterPullCommand(CLI::App& app);        // pull_command.cc: pull (pull_command.h)
void RegisterLifecycleCommands(CLI::App& app);  // lifecycle_commands.cc: retry pause resume delete
void RegisterCliCommands(CLI::App& app);        // cli_commands.cc: completion, config view, __complete-jobs

}  // namespace bert::client
