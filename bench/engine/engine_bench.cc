// engine_bench: how fast a BERT training step runs, as ratios measured in one run.
//
//   engine_bench [--threads N] [--steps S] [--rounds R] [--tokens K]
//                [--models a,b] [--seq 128,512] [--precision fp32,bf16] [--bench-dir DIR]
//                [--trace FILE]
//
// For each model (bert-mini, bert-base-uncased), sequence length T (128, 512)
// and precision (fp32, bf16), it times full training steps of the engine
// (sparse MLM head, flat AdamW, clipping) on batches of K/T sequences and reports
//   - achieved FLOP/s (matrix products of the work done: encoder and the head
//     on the masked positions, forward and backward) as a fraction of this
//     machine's matrix-product peak, measured at the same precision and
//     thread count in the same run (MFU), and
//   - throughput against the same architecture in PyTorch eager from Python
//     with the dense prediction head, as Hugging Face computes it
//     (hf_eager_bench.py: same libtorch, threads, batch and masks).
// The two sides run alternately, R rounds of S steps each after a warm-up
// step; each side's best round counts, so that load from other processes on
// a shared machine penalises neither side more than the other.
// --trace FILE writes libtorch's profile of one engine step of the first
// configuration (Chrome trace JSON) and exits.
#include <fcntl.h>
#include <sys/wait.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/autocast_scope.h"
#include "engine/bert_model.h"
#include "engine/cpu_memory.h"
#include "engine/precision.h"
#include "engine/flat_adamw.h"

namespace {

using bert::engine::BertConfig;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The best of several square products: this machine's matrix-product peak at
// the current thread count.
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

// The engine's training step, as trainer.cc runs it, on one fixed batch.
// Not thread-safe.
class EngineStepper {
 public:
  EngineStepper(const BertConfig& config, int64_t T, int64_t B, bool bf16)
      : config_(config), B_(B), T_(T), bf16_(bf16), model_(config) {
    torch::manual_seed(0);
    bert::engine::InitBertWeights(model_);
    model_->train();
    optimizer_ = std::make_unique<bert::engine::FlatAdamW>(model_->NamedParameters(),
                                                           bert::engine::AdamWOptions{});
    ids_ = torch::randint(5, config.vocab_size, {B, T}, torch::kInt64);   // (B,T)
    positions_ = torch::nonzero(torch::rand({B * T}) < 0.15).view({-1});  // (M)
    labels_ = ids_.view({-1}).index_select(0, positions_);                // (M)
    Step();                                                               // warm up
  }

  void Step() {
    optimizer_->ZeroGrad();
    torch::Tensor loss;
    {
      bert::engine::AutocastScope autocast(torch::kCPU, bf16_);
      const torch::Tensor logits = model_->MaskedLogits(ids_, positions_);  // (M,V)
      loss = torch::cross_entropy_loss(logits.to(torch::kFloat32), labels_);
    }
    loss.backward();
    optimizer_->ClipGradNorm(1.0);
    optimizer_->Step(5e-5);
  }

  // Sequences per second over `steps` steps.
  double Time(int steps) {
    const auto start = Clock::now();
    for (int i = 0; i < steps; ++i) Step();
    return static_cast<double>(B_) * steps / Seconds(start);
  }

  // Matrix-product FLOPs of one step: forward and backward (3x the forward).
  double StepFlops() const {
    return 3.0 * (static_cast<double>(B_) * bert::engine::BertForwardFlops(config_, T_, 0) +
                  bert::engine::BertForwardFlops(config_, 0, positions_.size(0)));
  }

 private:
  BertConfig config_;
  int64_t B_, T_;
  bool bf16_;
  bert::engine::BertForMaskedLM model_;
  std::unique_ptr<bert::engine::FlatAdamW> optimizer_;
  torch::Tensor ids_, positions_, labels_;
};

// hf_eager_bench.py as a co-process: started once per configuration (model
// built, one warm-up step), then asked to time rounds of steps.
class EagerProcess {
 public:
  EagerProcess(const std::string& dir, const std::vector<std::string>& args) {
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0) return;
    if (::pipe2(from_child, O_CLOEXEC) != 0) {
      ::close(to_child[0]);
      ::close(to_child[1]);
      return;
    }
    std::fflush(stdout);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      if (::chdir(dir.c_str()) != 0) ::_exit(127);
      std::vector<std::string> argv = {"/usr/bin/python3", "hf_eager_bench.py"};
      argv.insert(argv.end(), args.begin(), args.end());
      std::vector<char*> raw;
      for (auto& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = ::fdopen(to_child[1], "w");
    out_ = ::fdopen(from_child[0], "r");
    const auto ready = ReadJson();
    ready_ = ready.has_value() && ready->value("ready", false);
  }
  ~EagerProcess() {
    if (in_ != nullptr) std::fclose(in_);
    if (out_ != nullptr) std::fclose(out_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  bool ready() const { return ready_; }

  // Sequences per second over `steps` steps; nullopt when the process failed.
  std::optional<double> Time(int steps) {
    if (!ready_) return std::nullopt;
    std::fprintf(in_, "%d\n", steps);
    std::fflush(in_);
    const auto j = ReadJson();
    if (!j || !j->contains("sequences_per_second")) {
      ready_ = false;
      return std::nullopt;
    }
    return (*j)["sequences_per_second"].get<double>();
  }

 private:
  std::optional<nlohmann::json> ReadJson() {
    if (out_ == nullptr) return std::nullopt;
    char buffer[1024];
    if (std::fgets(buffer, sizeof buffer, out_) == nullptr) return std::nullopt;
    auto j = nlohmann::json::parse(buffer, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  pid_t pid_ = -1;
  std::FILE* in_ = nullptr;
  std::FILE* out_ = nullptr;
  bool ready_ = false;
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

struct Options {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int steps = 1;
  int rounds = 2;
  int64_t tokens = 1024;  // tokens a step: batch = tokens / T
  std::vector<std::string> models = {"bert-mini", "bert-base-uncased"};
  std::vector<std::string> seqs = {"128", "512"};
  std::vector<std::string> precisions = {"fp32", "bf16"};
  std::string bench_dir = BERT_BENCH_DIR;
  std::string trace;  // profile one engine step into this file, then exit
};

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "engine_bench: %s needs a value\n", flag.c_str());
      return false;
    }
    const std::string value = argv[++i];
    if (flag == "--threads")
      o->threads = std::stoi(value);
    else if (flag == "--steps")
      o->steps = std::stoi(value);
    else if (flag == "--rounds")
      o->rounds = std::stoi(value);
    else if (flag == "--tokens")
      o->tokens = std::stoll(value);
    else if (flag == "--models")
      o->models = SplitList(value);
    else if (flag == "--seq")
      o->seqs = SplitList(value);
    else if (flag == "--precision")
      o->precisions = SplitList(value);
    else if (flag == "--bench-dir")
      o->bench_dir = value;
    else if (flag == "--trace")
      o->trace = value;
    else {
      std::fprintf(stderr, "engine_bench: unknown option %s\n", flag.c_str());
      return false;
    }
  }
  if (o->threads < 1 || o->steps < 1 || o->rounds < 1 || o->tokens < 1) {
    std::fprintf(stderr,
                 "engine_bench: --threads, --steps, --rounds and --tokens must be at least 1\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    if (!ParseOptions(argc, argv, &o)) return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_bench: bad option value: %s\n", e.what());
    return 2;
  }
  torch::set_num_threads(o.threads);
  bert::engine::UseFastCpuMemory();  // as Pretrain() does on the CPU
  // The peak at each precision: the best product seen in the whole run,
  // probed at the start and again after every round, so that a probe that
  // ran while other processes held the cores does not flatter the MFU.
  double peak_fp32 = MeasurePeak(torch::kFloat32), peak_bf16 = MeasurePeak(torch::kBFloat16);
  struct Row {
    std::string model, precision;
    int64_t T, B;
    double ours, flops, eager;
  };
  std::vector<Row> rows;
  const int64_t vocab = 30522;
  try {
    for (const std::string& preset : o.models) {
      const auto config = bert::engine::PresetConfig(preset, vocab);
      if (!config) {
        std::fprintf(stderr, "engine_bench: unknown model preset %s\n", preset.c_str());
        return 2;
      }
      for (const std::string& seq : o.seqs) {
        const int64_t T = std::stoll(seq);
        for (const std::string& precision : o.precisions) {
          const bool bf16 = precision == "bf16";
          const int64_t B = std::max<int64_t>(1, o.tokens / T);
          EngineStepper ours(*config, T, B, bf16);
          if (!o.trace.empty()) {
            {
              torch::autograd::profiler::RecordProfile profile(o.trace);
              ours.Step();
            }
            std::printf("wrote the profile of one step of %s T=%ld %s to %s\n", preset.c_str(),
                        static_cast<long>(T), precision.c_str(), o.trace.c_str());
            return 0;
          }
          EagerProcess eager(
              o.bench_dir, {preset, std::to_string(T), std::to_string(B), std::to_string(o.threads),
                            precision, std::to_string(vocab)});
          double best_ours = 0, best_eager = 0;
          double& peak = bf16 ? peak_bf16 : peak_fp32;
          for (int round = 0; round < o.rounds; ++round) {
            best_ours = std::max(best_ours, ours.Time(o.steps));
            best_eager = std::max(best_eager, eager.Time(o.steps).value_or(0.0));
            peak = std::max(peak, MeasurePeak(bf16 ? torch::kBFloat16 : torch::kFloat32));
          }
          const double flops = best_ours / static_cast<double>(B) * ours.StepFlops();
          rows.push_back({preset, precision, T, B, best_ours, flops, best_eager});
          std::fprintf(stderr, "engine_bench: %s T=%ld %s done\n", preset.c_str(),
                       static_cast<long>(T), precision.c_str());
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_bench: %s\n", e.what());
    return 1;
  }
  std::printf(
      "threads %d; matrix-product peak (best probe of the run): fp32 %.1f GFLOP/s, bf16 %.1f "
      "GFLOP/s\n",
      o.threads, peak_fp32 / 1e9, peak_bf16 / 1e9);
  // What decides bf16's speed here, and what training.precision: auto picks on this CPU.
  const bert::engine::CpuFeatures cpu = bert::engine::ReadCpuFeatures();
  std::printf("cpu: %s; bf16/fp32 peak ratio %.2f; %s\n", cpu.Summary().c_str(),
              peak_bf16 / std::max(1.0, peak_fp32),
              bert::engine::ChoosePrecision("auto", "cpu", cpu, 0).reason.c_str());
  std::printf("%-18s %4s %3s %5s | %10s %8s %6s | %10s %6s\n", "model", "T", "B", "prec",
              "engine s/s", "GFLOP/s", "MFU", "eager s/s", "ratio");
  for (const Row& r : rows) {
    const double peak = r.precision == "bf16" ? peak_bf16 : peak_fp32;
    char ratio[32] = "n/a";
    if (r.eager > 0) std::snprintf(ratio, sizeof ratio, "%5.2fx", r.ours / r.eager);
    std::printf("%-18s %4ld %3ld %5s | %10.2f %8.1f %5.1f%% | %10.2f %6s\n", r.model.c_str(),
                static_cast<long>(r.T), static_cast<long>(r.B), r.precision.c_str(), r.ours,
                r.flops / 1e9, 100 * r.flops / peak, r.eager, ratio);
  }
  return 0;
}
