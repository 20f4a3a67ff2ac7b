// engine_device_check: the engine's device checks (tests/engine/device_checks.h)
// as one program without GoogleTest, for a machine that has a libtorch and a
// device but maybe no test framework (scripts/gpu-check.sh on a CUDA host).
//
//   engine_device_check [--device cpu|cuda|cuda:N] [--work-dir DIR]
//                       [--export TOKENIZER_DIR EXPORT_DIR LOGITS_JSON]
//
// Runs every check on the device, printing PASS or FAIL and why for each, and
// exits 1 when one failed. --export also exports the checkpoint that the
// training check wrote as a Hugging Face model directory (ExportHuggingFace,
// with the tokenizer in TOKENIZER_DIR: a vocabulary of the 64 ids "[PAD]",
// "[UNK]", "[CLS]", "[SEP]", "[MASK]", "w5" ... "w63") and writes the engine's
// logits on that export for fixed inputs to LOGITS_JSON, for transformers to
// compare against (bench/engine/hf_transformers_check.py).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/hf_export.h"
#include "engine/hf_model_loader.h"
#include "tests/engine/device_checks.h"

namespace {

namespace fs = std::filesystem;
using bert::engine::testing::CheckAttentionMatchesReference;
using bert::engine::testing::CheckCheckpointKeepsDeviceRngStates;
using bert::engine::testing::CheckCollectivesTakeOnlyTheWorldsDevice;
using bert::engine::testing::CheckTrainingResumesExactly;

// The engine's logits (fp32, eval) on its own export, for two sequences, the
// second padded: what transformers must reproduce from the same directory.
void WriteExportLogits(const std::string& export_dir, const torch::Device& device, const std::string& out_path) {
  bert::engine::BertForMaskedLM model = bert::engine::LoadHuggingFaceModel(export_dir);
  model->to(device);
  model->eval();
  torch::NoGradGuard no_grad;
  const std::vector<std::vector<int64_t>> ids = {{2, 10, 11, 12, 4, 13, 3}, {2, 20, 4, 21, 3, 0, 0}};
  const std::vector<std::vector<int64_t>> mask = {{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 0, 0}};
  auto to_tensor = [&](const std::vector<std::vector<int64_t>>& rows) {
    std::vector<int64_t> flat;
    for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
    return torch::tensor(flat, torch::kInt64).view({2, 7}).to(device);
  };
  const torch::Tensor logits = model->forward(to_tensor(ids), {}, to_tensor(mask)).to(torch::kCPU).contiguous();
  nlohmann::json out = {{"input_ids", ids}, {"attention_mask", mask}, {"logits", nlohmann::json::array()}};
  const auto accessor = logits.accessor<float, 3>();
  for (int64_t b = 0; b < logits.size(0); ++b) {
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t t = 0; t < logits.size(1); ++t) {
      std::vector<float> row(static_cast<size_t>(logits.size(2)));
      for (int64_t v = 0; v < logits.size(2); ++v) row[static_cast<size_t>(v)] = accessor[b][t][v];
      rows.push_back(row);
    }
    out["logits"].push_back(rows);
  }
  std::ofstream(out_path) << out.dump() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = "cpu";
  std::string work_dir = (fs::temp_directory_path() / ("engine-device-check-" + std::to_string(::getpid()))).string();
  std::string tokenizer_dir, export_dir, logits_path;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--device" && i + 1 < argc) {
      device_name = argv[++i];
    } else if (flag == "--work-dir" && i + 1 < argc) {
      work_dir = argv[++i];
    } else if (flag == "--export" && i + 3 < argc) {
      tokenizer_dir = argv[++i];
      export_dir = argv[++i];
      logits_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: engine_device_check [--device cpu|cuda|cuda:N] [--work-dir DIR]\n"
                   "                           [--export TOKENIZER_DIR EXPORT_DIR LOGITS_JSON]\n");
      return 2;
    }
  }
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(device_name);
    if (device.is_cuda() && !device.has_index()) device = torch::Device(torch::kCUDA, 0);
    if (device.is_cuda() && !torch::cuda::is_available()) {
      std::fprintf(stderr, "engine_device_check: %s requested, but this libtorch sees no CUDA device\n",
                   device_name.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_device_check: bad --device %s: %s\n", device_name.c_str(), e.what());
    return 2;
  }
  fs::remove_all(work_dir);
  fs::create_directories(work_dir);
  std::printf("engine_device_check on %s (libtorch %s), work directory %s\n", device.str().c_str(),
              TORCH_VERSION, work_dir.c_str());

  int failed = 0;
  auto run = [&](const std::string& name, const std::function<std::string()>& check) {
    const auto start = std::chrono::steady_clock::now();
    std::string failures;
    try {
      failures = check();
    } catch (const std::exception& e) {
      failures = std::string("threw: ") + e.what() + "\n";
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (failures.empty()) {
      std::printf("PASS %s (%.1f s)\n", name.c_str(), seconds);
    } else {
      ++failed;
      std::printf("FAIL %s (%.1f s):\n%s", name.c_str(), seconds, failures.c_str());
    }
    std::fflush(stdout);
  };
  run("collectives take only the world's device", [&] { return CheckCollectivesTakeOnlyTheWorldsDevice(device); });
  run("attention matches the reference (fp32, bf16)", [&] { return CheckAttentionMatchesReference(device); });
  run("checkpoints keep each rank's device generator",
      [&] { return CheckCheckpointKeepsDeviceRngStates(device, work_dir + "/rng"); });
  run("training resumes exactly (dropout on)", [&] { return CheckTrainingResumesExactly(device, work_dir + "/train"); });
  if (!tokenizer_dir.empty()) {
    run("export for transformers, with the engine's logits", [&]() -> std::string {
      bert::engine::ExportOptions options;
      options.checkpoint_dir = work_dir + "/train/straight/checkpoints";
      options.tokenizer_dir = tokenizer_dir;
      options.output_dir = export_dir;
      bert::engine::ExportHuggingFace(options);
      WriteExportLogits(export_dir, device, logits_path);
      return "";
    });
  }
  std::printf("%s: %d check(s) failed\n", failed == 0 ? "OK" : "FAILED", failed);
  return failed == 0 ? 0 : 1;
}
