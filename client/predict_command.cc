// bertctl predict --model DIR [--top-k K] [--json] "text with [MASK]"
//
// Fill-mask prediction from an exported model directory. bertctl never links
// libtorch: it runs `bert-worker predict` from the directory bertctl itself is
// in, passes stdout and stderr through, and exits with the worker's status
// mapped onto bertctl's codes (2 for bad input, 1 otherwise).
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "client/commands.h"

namespace bert::client {
namespace {

struct PredictArgs {
  std::string model_dir;
  int top_k = 5;
  bool json = false;
  std::vector<std::string> text;
};

// bert-worker beside the running bertctl; empty when it is not there.
std::string WorkerPath() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const std::filesystem::path worker = self.parent_path() / "bert-worker";
  return std::filesystem::exists(worker, ec) ? worker.string() : std::string();
}

void RunPredict(const PredictArgs& args) {
  const std::string worker = WorkerPath();
  if (worker.empty()) {
    std::cerr << "bertctl predict: bert-worker not found beside bertctl (it is built with libtorch; "
                 "configure with -DBERT_WITH_TORCH=ON)\n";
    throw CLI::RuntimeError(1);
  }
  std::vector<std::string> argv = {worker, "predict", "--model", args.model_dir, "--top-k",
                                   std::to_string(args.top_k)};
  if (args.json) argv.push_back("--json");
  argv.insert(argv.end(), args.text.begin(), args.text.end());
  std::vector<char*> c_argv;
  for (std::string& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  std::cout.flush();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "bertctl predict: fork failed: " << std::strerror(errno) << "\n";
    throw CLI::RuntimeError(1);
  }
  if (pid == 0) {
    ::execv(c_argv[0], c_argv.data());
    std::cerr << "bertctl predict: cannot run " << worker << ": " << std::strerror(errno) << "\n";
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) throw CLI::RuntimeError(2);
  throw CLI::RuntimeError(1);
}

}  // namespace

void RegisterPredictCommand(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  CLI::App* cmd = app.add_subcommand("predict", "Fill each [MASK] in a text with an exported model's top-k tokens");
  cmd->add_option("--model", args->model_dir, "Exported Hugging Face model directory")->required()->check(
      CLI::ExistingDirectory);
  cmd->add_option("--top-k", args->top_k, "Fills to print per [MASK]")->check(CLI::Range(1, 1000));
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->add_option("text", args->text, "Text with [MASK], e.g. \"paris is the [MASK] of france\"")->required();
  cmd->callback([args] { RunPredict(*args); });
}

}  // namespace bert::client
