// bert-worker: runs libtorch work for the agent and bertctl (docs/worker-protocol.md).
//
//   bert-worker pretrain --config CONFIG.json
//   bert-worker export   --config CONFIG.json
//   bert-worker predict  --model DIR [--top-k K] [--json] TEXT...
//   bert-worker devices
//
// pretrain and export report JSON lines on stdout and end with a `result`
// line; libtorch's own output goes to stderr. SIGTERM stops pretraining at the
// next step boundary (exit 143, no checkpoint written); SIGUSR1 stops it there
// after writing a checkpoint at that step (exit 138, result PAUSED_BY_USER), so
// that a later run resumes exactly there.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include "engine/engine_error.h"
#include "engine/predictor.h"
#include "engine/trainer.h"
#include "engine/worker_commands.h"

namespace {

using bert::engine::EngineError;
using bert::engine::FailureCause;

std::atomic<bool> g_cancelled{false};

void OnSigterm(int) { g_cancelled.store(true); }

std::atomic<bool> g_paused{false};

void OnSigusr1(int) { g_paused.store(true); }

constexpr int kExitFailure = bert::engine::kWorkerExitFailure;
constexpr int kExitUsage = bert::engine::kWorkerExitUsage;

int RunPredict(const std::string& model_dir, int top_k, bool json, const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : " ") + w;
  try {
    bert::engine::Predictor predictor(model_dir);
    const bert::engine::Prediction prediction = predictor.Predict(text, top_k);
    const auto& fills = prediction.fills;
    if (json) {
      nlohmann::json out = {{"input_ids", prediction.input_ids}, {"fills", nlohmann::json::array()}};
      for (const auto& fill : fills) {
        nlohmann::json top = nlohmann::json::array();
        for (const auto& t : fill.top) top.push_back({{"token", t.token}, {"id", t.id}, {"score", t.score}});
        out["fills"].push_back({{"position", fill.position}, {"top", top}});
      }
      std::cout << out.dump() << "\n";
      return 0;
    }
    for (size_t m = 0; m < fills.size(); ++m) {
      if (fills.size() > 1) std::cout << "[MASK] " << m + 1 << " of " << fills.size() << ":\n";
      for (const auto& t : fills[m].top) {
        char line[256];
        std::snprintf(line, sizeof line, "%-20s %.4f\n", t.token.c_str(), t.score);
        std::cout << line;
      }
    }
    return 0;
  } catch (const EngineError& e) {
    std::cerr << "bert-worker predict: " << e.what() << "\n";
    return e.cause() == FailureCause::kSpecError ? kExitUsage : kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "bert-worker predict: " << e.what() << "\n";
    return kExitFailure;
  }
}

}  // namespace

int RunDevices() {
  const bert::engine::DeviceInventory inventory = bert::engine::ProbeDevices();
  std::cout << nlohmann::json{{"kind", inventory.kind}, {"count", inventory.count}, {"name", ""}}.dump() << "\n";
  return 0;
}

int main(int argc, char** argv) {
  std::signal(SIGTERM, OnSigterm);
  std::signal(SIGUSR1, OnSigusr1);
  CLI::App app{"bert-worker: libtorch pre-training, export and prediction"};
  app.require_subcommand(1);
  std::string config_path, model_dir;
  int top_k = 5;
  bool json = false;
  std::vector<std::string> words;
  CLI::App* pretrain = app.add_subcommand("pretrain", "pre-train (or resume) from CONFIG.json");
  pretrain->add_option("--config", config_path, "CONFIG.json")->required();
  CLI::App* exporter = app.add_subcommand("export", "export a checkpoint as a Hugging Face model directory");
  exporter->add_option("--config", config_path, "CONFIG.json")->required();
  CLI::App* predict = app.add_subcommand("predict", "fill each [MASK] in TEXT");
  predict->add_option("--model", model_dir, "exported model directory")->required();
  predict->add_option("--top-k", top_k, "fills to print per [MASK]")->check(CLI::Range(1, 1000));
  predict->add_flag("--json", json, "print JSON");
  predict->add_option("text", words, "text with [MASK]")->required();
  CLI::App* devices = app.add_subcommand("devices", "print the accelerators libtorch sees, as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (pretrain->parsed()) return bert::engine::RunPretrainCommand(config_path, stdout, &g_cancelled, {}, &g_paused);
  if (exporter->parsed()) return bert::engine::RunExportCommand(config_path, stdout, &g_cancelled);
  if (devices->parsed()) return RunDevices();
  return RunPredict(model_dir, top_k, json, words);
}
