// engine_bench: how fast a BERT training step runs, as ratios measured in one run.
//
//   engine_bench [--threads N] [--steps S] [--quick]
//
// For each model (bert-mini, bert-base-uncased), sequence length (128, 512)
// and precision (fp32, bf16), it times full training steps of the engine
// (sparse MLM head, flat AdamW, clipping) and reports
//   - achieved FLOP/s as a fraction of this machine's measured matrix-product
//     peak at the same precision and thread count (MFU), and
//   - throughput against the same architecture in PyTorch eager from Python
//     with the dense prediction head, as Hugging Face computes it
//     (hf_eager_bench.py, same libtorch, same threads, same batch).
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/bert_model.h"
#include "engine/flat_adamw.h"

namespace {

using bert::engine::BertConfig;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The best of several square products: this machine's matrix-product peak.
double MeasurePeak(torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  double best = 0;
  for (int64_t n : {1024, 2048, 3072}) {
    const torch::Tensor a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
    torch::mm(a, b);
    for (int trial = 0; trial < 3; ++trial) {
      const auto start = Clock::now();
      torch::mm(a, b);
      best = std::max(best, 2.0 * n * n * n / Seconds(start));
    }
  }
  return best;
}

struct StepResult {
  double sequences_per_second = 0;
  double flops_per_second = 0;
};

StepResult TimeEngine(const BertConfig& config, int64_t T, int64_t B, int steps, bool bf16) {
  torch::manual_seed(0);
  bert::engine::BertForMaskedLM model(config);
  bert::engine::InitBertWeights(model);
  model->train();
  bert::engine::FlatAdamW optimizer(model->NamedParameters(), {});
  const torch::Tensor ids = torch::randint(5, config.vocab_size, {B, T}, torch::kInt64);        // (B,T)
  const torch::Tensor positions = torch::nonzero(torch::rand({B * T}) < 0.15).view({-1});       // (M)
  const torch::Tensor labels = ids.view({-1}).index_select(0, positions);                       // (M)
  const int64_t M = positions.size(0);
  auto step = [&] {
    optimizer.ZeroGrad();
    torch::Tensor loss;
    {
      if (bf16) {
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        at::autocast::set_cpu_enabled(true);
      }
      loss = torch::cross_entropy_loss(model->MaskedLogits(ids, positions).to(torch::kFloat32), labels);
      if (bf16) at::autocast::set_cpu_enabled(false);
    }
    loss.backward();
    if (bf16) at::autocast::clear_cache();
    optimizer.ClipGradNorm(1.0);
    optimizer.Step(5e-5);
  };
  step();  // warm up
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double s = Seconds(start);
  const double flops = 3.0 * (B * bert::engine::BertForwardFlops(config, T, 0) + bert::engine::BertForwardFlops(config, 0, M));
  return {B * steps / s, flops * steps / s};
}

double TimePythonEager(const std::string& preset, int64_t T, int64_t B, int steps, int threads, bool bf16,
                       int64_t vocab) {
  const std::string command = std::string("cd ") + BERT_BENCH_DIR + " && /usr/bin/python3 hf_eager_bench.py " + preset +
                              " " + std::to_string(T) + " " + std::to_string(B) + " " + std::to_string(steps) + " " +
                              std::to_string(threads) + " " + (bf16 ? "bf16" : "fp32") + " " + std::to_string(vocab);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), &::pclose);
  if (!pipe) return 0;
  std::string out;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe.get()) != nullptr) out += buffer;
  const auto j = nlohmann::json::parse(out, nullptr, false);
  return j.is_discarded() ? 0 : j.value("sequences_per_second", 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, steps = 2;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
  }
  torch::set_num_threads(threads);
  const double peak_fp32 = MeasurePeak(torch::kFloat32), peak_bf16 = MeasurePeak(torch::kBFloat16);
  std::printf("threads %d; measured matrix-product peak: fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n", threads,
              peak_fp32 / 1e9, peak_bf16 / 1e9);
  std::printf("%-18s %4s %3s %5s | %10s %8s %6s | %10s %6s\n", "model", "T", "B", "prec", "engine s/s", "GFLOP/s",
              "MFU", "eager s/s", "ratio");
  const int64_t vocab = 30522;
  for (const char* preset : {"bert-mini", "bert-base-uncased"}) {
    for (int64_t T : {128, 512}) {
      for (bool bf16 : {false, true}) {
        if (quick && (T == 512 || bf16)) continue;
        const BertConfig config = *bert::engine::PresetConfig(preset, vocab);
        const int64_t B = std::max<int64_t>(1, 2048 / T);  // 2048 tokens a step
        const StepResult ours = TimeEngine(config, T, B, steps, bf16);
        const double eager = TimePythonEager(preset, T, B, steps, threads, bf16, vocab);
        const double peak = bf16 ? peak_bf16 : peak_fp32;
        std::printf("%-18s %4ld %3ld %5s | %10.2f %8.1f %5.1f%% | %10.2f %5.2fx\n", preset, static_cast<long>(T),
                    static_cast<long>(B), bf16 ? "bf16" : "fp32", ours.sequences_per_second,
                    ours.flops_per_second / 1e9, 100 * ours.flops_per_second / peak, eager,
                    eager > 0 ? ours.sequences_per_second / eager : 0.0);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
