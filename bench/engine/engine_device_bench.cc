// engine_device_bench: the engine's training step on an accelerator (or the
// CPU): sequences per second and MFU against the device's peak
// (engine/device_peak.h: --peak-tflops, else the table entry for the GPU's
// name). scripts/gpu-check.sh runs it beside Hugging Face transformers on the
// same GPU (hf_transformers_bench.py) and prints the ratios.
//
//   engine_device_bench [--device cuda] [--models bert-base-uncased] [--seq 128,512]
//                       [--precision bf16] [--tokens 32768] [--steps 20] [--warmup 3]
//                       [--peak-tflops X] [--seed 0]
//
// A step is trainer.cc's: bf16 autocast, the sparse MLM head on the masked
// positions (15% of tokens), backward, gradient clipping, FlatAdamW; batch =
// tokens / seq. One JSON line per configuration on stdout, then a table.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autocast_scope.h"
#include "engine/bert_model.h"
#include "engine/cpu_memory.h"
#include "engine/device_peak.h"
#include "engine/flat_adamw.h"

namespace {

using bert::engine::BertConfig;
using Clock = std::chrono::steady_clock;

void Synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

class DeviceStepper {
 public:
  DeviceStepper(const BertConfig& config, const torch::Device& device, int64_t T, int64_t B, bool bf16)
      : config_(config), device_(device), B_(B), T_(T), bf16_(bf16), model_(config) {
    torch::manual_seed(0);
    bert::engine::InitBertWeights(model_);
    model_->to(device);
    model_->train();
    optimizer_ = std::make_unique<bert::engine::FlatAdamW>(model_->NamedParameters(), bert::engine::AdamWOptions{});
    ids_ = torch::randint(5, config.vocab_size, {B, T}, torch::kInt64);   // (B,T)
    positions_ = torch::nonzero(torch::rand({B * T}) < 0.15).view({-1});  // (M)
    labels_ = ids_.view({-1}).index_select(0, positions_).to(device);     // (M)
    ids_ = ids_.to(device);
    positions_ = positions_.to(device);
  }

  void Step() {
    optimizer_->ZeroGrad();
    torch::Tensor loss;
    {
      bert::engine::AutocastScope autocast(device_, bf16_);
      const torch::Tensor logits = model_->MaskedLogits(ids_, positions_);  // (M,V)
      loss = torch::cross_entropy_loss(logits.to(torch::kFloat32), labels_);
    }
    loss.backward();
    optimizer_->ClipGradNorm(1.0);  // reads the norm back: one host sync a step, as in training
    optimizer_->Step(5e-5);
  }

  // Sequences per second over `steps` steps, after the device has finished them.
  double Time(int steps) {
    Synchronize(device_);
    const auto start = Clock::now();
    for (int i = 0; i < steps; ++i) Step();
    Synchronize(device_);
    return static_cast<double>(B_) * steps / std::chrono::duration<double>(Clock::now() - start).count();
  }

  // Matrix-product FLOPs of one sequence's training (forward and backward, 3x the forward).
  double SequenceFlops() const {
    return 3.0 * (bert::engine::BertForwardFlops(config_, T_, 0) +
                  bert::engine::BertForwardFlops(config_, 0, positions_.size(0)) / static_cast<double>(B_));
  }

 private:
  BertConfig config_;
  torch::Device device_;
  int64_t B_, T_;
  bool bf16_;
  bert::engine::BertForMaskedLM model_;
  std::unique_ptr<bert::engine::FlatAdamW> optimizer_;
  torch::Tensor ids_, positions_, labels_;
};

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = "cuda";
  std::vector<std::string> models = {"bert-base-uncased"}, seqs = {"128", "512"}, precisions = {"bf16"};
  int64_t tokens = 32768;
  int steps = 20, warmup = 3;
  double peak_tflops = 0;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      const std::string value = argv[++i];
      if (flag == "--device") device_name = value;
      else if (flag == "--models") models = SplitList(value);
      else if (flag == "--seq") seqs = SplitList(value);
      else if (flag == "--precision") precisions = SplitList(value);
      else if (flag == "--tokens") tokens = std::stoll(value);
      else if (flag == "--steps") steps = std::stoi(value);
      else if (flag == "--warmup") warmup = std::stoi(value);
      else if (flag == "--peak-tflops") peak_tflops = std::stod(value);
      else throw std::invalid_argument("unknown option " + flag);
    }
    if (tokens < 1 || steps < 1 || warmup < 0) throw std::invalid_argument("--tokens and --steps must be at least 1");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_device_bench: %s\n", e.what());
    return 2;
  }
  try {
    torch::Device device(device_name);
    if (device.is_cuda() && !device.has_index()) device = torch::Device(torch::kCUDA, 0);
    if (device.is_cpu()) bert::engine::UseFastCpuMemory();
    const std::string name = device.is_cuda() ? bert::engine::CudaDeviceName(device.index()) : device.str();
    struct Row {
      std::string model, precision;
      int64_t T, B;
      double seqs, flops_per_seq, peak;
    };
    std::vector<Row> rows;
    for (const std::string& preset : models) {
      const auto config = bert::engine::PresetConfig(preset, 30522);
      if (!config) throw std::invalid_argument("unknown model preset " + preset);
      for (const std::string& seq : seqs) {
        for (const std::string& precision : precisions) {
          const int64_t T = std::stoll(seq), B = std::max<int64_t>(1, tokens / T);
          const bool bf16 = precision == "bf16";
          DeviceStepper stepper(*config, device, T, B, bf16);
          if (warmup > 0) stepper.Time(warmup);
          const double seqs_per_s = stepper.Time(steps);
          const double peak = bert::engine::ResolvePeakFlops(peak_tflops * 1e12, name, bf16);
          rows.push_back({preset, precision, T, B, seqs_per_s, stepper.SequenceFlops(), peak});
          const nlohmann::json line = {{"model", preset}, {"precision", precision}, {"seq", T},
                                       {"batch", B},      {"sequences_per_second", seqs_per_s},
                                       {"flops_per_sequence", stepper.SequenceFlops()},
                                       {"peak_flops", peak}, {"device", name}};
          std::printf("%s\n", line.dump().c_str());
          std::fflush(stdout);
        }
      }
    }
    std::printf("device %s; peak %s\n", name.c_str(),
                peak_tflops > 0 ? "from --peak-tflops" : "from engine/device_peak.cc's table (0: unknown device)");
    std::printf("%-18s %4s %4s %5s | %10s %9s %6s\n", "model", "T", "B", "prec", "seq/s", "TFLOP/s", "MFU");
    for (const Row& r : rows) {
      const double flops = r.seqs * r.flops_per_seq;
      char mfu[16] = "n/a";
      if (r.peak > 0) std::snprintf(mfu, sizeof mfu, "%5.1f%%", 100 * flops / r.peak);
      std::printf("%-18s %4ld %4ld %5s | %10.1f %9.1f %6s\n", r.model.c_str(), static_cast<long>(r.T),
                  static_cast<long>(r.B), r.precision.c_str(), r.seqs, flops / 1e12, mfu);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_device_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
