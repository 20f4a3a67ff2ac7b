// The training loop, top to bottom: set up (device, world, data, model,
// optimizer, resume), then for each step: fetch A micro-batches, forward and
// backward each, all-reduce, clip, update; log, evaluate and checkpoint on
// their schedules. Leaves out: model parallelism and fp16 loss scaling (bf16
// needs none). Every tensor a collective takes lives on the training device
// (Distributed checks it); checkpoints hold each rank's CPU and CUDA
// generator states, so resumes are exact on both.
//
// Letters: B per-device batch, T sequence length, C hidden, V vocabulary,
// M masked positions in a micro-batch, W world size, A accumulation steps.
#include "engine/trainer.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "engine/autocast_scope.h"
#include "engine/bert_model.h"
#include "engine/checkpoint.h"
#include "engine/cpu_memory.h"
#include "engine/device_peak.h"
#include "engine/distributed.h"
#include "engine/engine_error.h"
#include "engine/flat_adamw.h"
#include "engine/local_attention_init.h"
#include "engine/mlm_batch_loader.h"
#include "engine/packed_dataset.h"
#include "engine/precision.h"
#include "engine/warm_start.h"

namespace bert::engine {
namespace {

using Clock = std::chrono::steady_clock;

// One accelerator per local rank, as torchrun and gaudi_spawn give each
// process: CUDA ranks address cuda:LOCAL_RANK; Habana's bridge gives each
// process the card of its LOCAL_RANK (initialize_distributed_hpu), which that
// process sees as its only HPU, hpu:0.
torch::Device ParseDevice(const std::string& device, int64_t local_rank) {
  if (device == "cpu") return torch::Device(torch::kCPU);
  if (device == "cuda") return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
  if (device == "hpu") return torch::Device(torch::kHPU, 0);
  throw EngineError(FailureCause::kSpecError, "device \"" + device + "\" is not one of cpu, cuda, hpu");
}

torch::Tensor ToDevice(const std::vector<int64_t>& v, std::vector<int64_t> shape, const torch::Device& device) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), shape, torch::kInt64).to(device, /*non_blocking=*/false, /*copy=*/true);
}

// The dtype of the small sums that go through collectives (step info, losses,
// evaluation sums): float64, except on Gaudi, which has no float64.
torch::TensorOptions SumOptions(const torch::Device& device) {
  return torch::TensorOptions().dtype(device.type() == torch::kHPU ? torch::kFloat32 : torch::kFloat64).device(device);
}

// Every rank's `state` (a CPU tensor, e.g. a generator's), gathered through the
// world's device (NCCL takes no CPU tensors), as CPU tensors in rank order.
std::vector<torch::Tensor> GatherStates(Distributed& world, const torch::Tensor& state) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& t : world.AllGather(state.to(world.device()))) out.push_back(t.to(torch::kCPU));
  return out;
}

// The default generator of a device (CUDA: the GPU's own); its state is a CPU uint8 tensor.
at::Generator DefaultGenerator(const torch::Device& device) {
  return device.is_cpu() ? at::detail::getDefaultCPUGenerator() : at::globalContext().defaultGenerator(device);
}

void SetGeneratorState(const torch::Device& device, const torch::Tensor& state) {
  at::Generator generator = DefaultGenerator(device);  // shares the default generator
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

torch::Tensor GeneratorState(const torch::Device& device) {
  at::Generator generator = DefaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

// Peak matrix-product FLOP/s of one device, for MFU (engine/device_peak.h):
// the configured peak when set, else measured on CPU with a short GEMM probe,
// looked up by name for known GPUs, else 0 (MFU not reported). `*source`
// says where it came from, for the log.
double PeakFlops(const torch::Device& device, bool bf16, double configured, std::string* source) {
  if (configured > 0) {
    *source = "training.peak_tflops";
    return configured;
  }
  if (device.is_cuda()) {
    const std::string name = CudaDeviceName(device.index());
    const double peak = ResolvePeakFlops(0, name, bf16);
    *source = peak > 0 ? "the table entry for " + name
                       : "none: \"" + name + "\" is not in engine/device_peak.cc's table; set training.peak_tflops";
    return peak;
  }
  if (device.is_cpu()) {
    *source = "measured with a matrix product";
    const auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat32;
    const int64_t n = 1024;
    torch::Tensor a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
    torch::NoGradGuard no_grad;
    torch::mm(a, b);  // warm up
    double best = 0;
    for (int trial = 0; trial < 3; ++trial) {
      const auto start = Clock::now();
      const int reps = 4;
      for (int i = 0; i < reps; ++i) torch::mm(a, b);
      const double s = std::chrono::duration<double>(Clock::now() - start).count();
      best = std::max(best, reps * 2.0 * n * n * n / s);
    }
    return best;
  }
  *source = "none for " + device.str() + "; set training.peak_tflops";
  return 0;
}

std::vector<std::pair<std::string, torch::Tensor>> CpuCopies(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, t] : tensors) out.emplace_back(name, t.detach().to(torch::kCPU, false, /*copy=*/true));
  return out;
}

// Evaluation on the held-out split: masked-token loss and accuracy summed over
// every rank's share (fixed masks from stream 1), reduced across ranks.
struct EvalResult {
  double loss = 0, accuracy = 0, perplexity = 0;
};

EvalResult Evaluate(BertForMaskedLM& model, const PackedSplit& split, const MlmMasker& masker,
                    int64_t max_blocks, int64_t batch_size, const torch::Device& device, bool bf16,
                    Distributed& world) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t total = max_blocks > 0 ? std::min(max_blocks, split.blocks()) : split.blocks();
  const int64_t W = world.world_size(), r = world.rank();
  const int64_t first = total * r / W, last = total * (r + 1) / W;  // this rank's share
  double sums[3] = {0, 0, 0};  // loss sum, correct, count
  for (int64_t b0 = first; b0 < last; b0 += batch_size) {
    const int64_t n = std::min(batch_size, last - b0);
    const MlmBatch batch = MaskContiguousBlocks(split, masker, b0, n);
    if (batch.labels.empty()) continue;
    const int64_t M = static_cast<int64_t>(batch.labels.size());
    const torch::Tensor ids = ToDevice(batch.input_ids, {n, batch.seq_len}, device);  // (n,T)
    const torch::Tensor positions = ToDevice(batch.masked_positions, {M}, device);   // (M)
    const torch::Tensor labels = ToDevice(batch.labels, {M}, device);                // (M)
    torch::Tensor logits;
    {
      AutocastScope autocast(device, bf16);
      logits = model->MaskedLogits(ids, positions).to(torch::kFloat32);  // (M,V)
    }
    sums[0] += torch::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum).item<double>();
    sums[1] += logits.argmax(-1).eq(labels).sum().item<double>();
    sums[2] += static_cast<double>(M);
  }
  torch::Tensor reduced = torch::tensor({sums[0], sums[1], sums[2]}, torch::kFloat64).to(SumOptions(device));
  world.AllReduceSum(reduced);
  reduced = reduced.to(torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU));
  model->train();
  EvalResult result;
  const double count = std::max(1.0, reduced[2].item<double>());
  result.loss = reduced[0].item<double>() / count;
  result.accuracy = reduced[1].item<double>() / count;
  result.perplexity = std::exp(result.loss);
  return result;
}

}  // namespace

double LinearScheduleLr(double base_lr, int64_t step, int64_t warmup_steps, int64_t max_steps) {
  if (step < warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  return base_lr * std::max(0.0, static_cast<double>(max_steps - step) /
                                     static_cast<double>(std::max<int64_t>(1, max_steps - warmup_steps)));
}

DeviceInventory ProbeDevices() {
  DeviceInventory inventory;
  if (torch::cuda::is_available()) {
    inventory.kind = "cuda";
    inventory.count = static_cast<int64_t>(torch::cuda::device_count());
    return inventory;
  }
  try {
    (void)torch::empty({1}, torch::TensorOptions().device(torch::Device(torch::kHPU, 0)));
    inventory.kind = "hpu";
    inventory.count = 1;
  } catch (const c10::Error&) {
  }
  return inventory;
}

void ValidatePretrainOptions(const PretrainOptions& o) {
  auto spec_error = [](const std::string& message) { throw EngineError(FailureCause::kSpecError, message); };
  const TrainingOptions& t = o.training;
  if (o.dataset_dir.empty()) spec_error("dataset_dir is empty");
  if (o.output_dir.empty()) spec_error("output_dir is empty");
  if (t.max_steps < 1) spec_error("training.max_steps must be at least 1");
  if (t.per_device_batch_size < 1) spec_error("training.per_device_batch_size must be at least 1");
  if (t.gradient_accumulation_steps < 1) spec_error("training.gradient_accumulation_steps must be at least 1");
  if (!(t.learning_rate > 0)) spec_error("training.learning_rate must be positive");
  if (t.mlm_probability <= 0 || t.mlm_probability >= 1) spec_error("training.mlm_probability must be in (0, 1)");
  if (t.mask_replace_prob < 0 || t.random_replace_prob < 0 || t.mask_replace_prob + t.random_replace_prob > 1) {
    spec_error("training.mask_replace_prob and random_replace_prob must be >= 0 with a sum of at most 1");
  }
  if (t.precision != "fp32" && t.precision != "bf16" && t.precision != "auto") {
    spec_error("training.precision must be \"fp32\", \"bf16\" or \"auto\"");
  }
  if (t.warmup_steps < 0 || t.warmup_ratio < 0 || t.warmup_ratio > 1) spec_error("training.warmup_* out of range");
  if (t.save_steps < 0 || t.logging_steps < 0 || t.eval_steps < 0) spec_error("training.*_steps must not be negative");
  if (o.threads < 0) spec_error("threads must not be negative");
  BertConfig model = o.model;
  if (model.vocab_size == 0) model.vocab_size = 5;  // filled from the dataset later
  if (const std::string why = model.Validate(); !why.empty()) spec_error("model." + why);
  const torch::Device device = ParseDevice(o.device, o.distributed.local_rank);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    spec_error("device \"cuda\" requested, but this libtorch has no CUDA or no GPU is visible");
  }
  if (device.is_cuda() && o.distributed.local_rank >= static_cast<int64_t>(torch::cuda::device_count())) {
    spec_error("distributed.local_rank " + std::to_string(o.distributed.local_rank) + " has no CUDA device");
  }
  if (device.type() == torch::kHPU) {
    try {
      (void)torch::empty({1}, torch::TensorOptions().device(device));
    } catch (const c10::Error&) {
      spec_error("device \"hpu\" requested (local rank " + std::to_string(o.distributed.local_rank) +
                 "), but this libtorch has no Habana (HPU) backend or no HPU is visible");
    }
  }
  if (t.peak_flops < 0) spec_error("training.peak_flops must not be negative");
  if (t.precision == "bf16" && device.is_cuda() && !torch::cuda::is_available()) spec_error("bf16 needs a device");
  if (o.distributed.world_size > 1 && device.is_cpu() && o.distributed.backend != "gloo") {
    spec_error("distributed.backend must be \"gloo\" on cpu");
  }
}

PretrainResult Pretrain(const PretrainOptions& options, TrainingObserver& observer, const PretrainRuntime& runtime) {
  ValidatePretrainOptions(options);
  const TrainingOptions& opt = options.training;
  if (options.threads > 0) torch::set_num_threads(options.threads);
  const torch::Device device = ParseDevice(options.device, options.distributed.local_rank);
  // precision "auto": bf16 where this device multiplies bf16 natively (engine/precision.h).
  const PrecisionChoice precision =
      ChoosePrecision(opt.precision, device.is_cuda() ? "cuda" : (device.is_cpu() ? "cpu" : "hpu"),
                      device.is_cpu() ? ReadCpuFeatures() : CpuFeatures{},
                      device.is_cuda() ? CudaComputeCapabilityMajor(std::max<int>(0, device.index())) : 0);
  if (!precision.reason.empty()) observer.OnLog("info", precision.reason);
  const bool bf16 = precision.precision == "bf16";
  if (device.is_cpu()) UseFastCpuMemory();  // no page faults on each step's buffers
  // This rank's accelerator is the current one: kernels, NCCL's communicators
  // and its barrier use it, not device 0.
  if (!device.is_cpu()) c10::impl::getDeviceGuardImpl(device.type())->setDevice(device);

  // --- The world, the data -------------------------------------------------
  std::unique_ptr<Distributed> world = runtime.join_world ? runtime.join_world(options.distributed, device)
                                                          : Distributed::Create(options.distributed, device);
  const int64_t W = world->world_size(), rank = world->rank();
  const int64_t B = opt.per_device_batch_size, A = opt.gradient_accumulation_steps;
  const PackedDataset dataset = PackedDataset::Open(options.dataset_dir, /*verify_checksums=*/false);
  const PackedSplit& train = dataset.split("train");
  if (train.blocks() == 0) throw EngineError(FailureCause::kDataError, options.dataset_dir + ": the train split is empty");
  const int64_t T = dataset.seq_len();
  // A checkpoint of this run wins over a warm start: an interrupted
  // warm-started run resumes where it stopped.
  const std::string checkpoints_dir = options.output_dir + "/checkpoints";
  std::vector<std::string> skipped;
  const std::optional<std::string> resume_from = NewestValidCheckpoint(checkpoints_dir, &skipped);
  const bool warm_start = !options.init_from.empty() && !resume_from.has_value();
  BertConfig config = options.model;
  if (!options.init_from.empty()) {
    config = resume_from ? ReadCheckpointConfig(*resume_from) : WarmStartModelConfig(options.init_from, options.init_model);
  }
  if (config.vocab_size == 0) config.vocab_size = dataset.vocab_size();
  if (config.vocab_size < dataset.vocab_size()) {
    throw EngineError(FailureCause::kSpecError, "model.vocab_size " + std::to_string(config.vocab_size) +
                                                    " is smaller than the dataset's " + std::to_string(dataset.vocab_size()));
  }
  if (T > config.max_position_embeddings) {
    throw EngineError(FailureCause::kSpecError, "the dataset's seq_len " + std::to_string(T) +
                                                    " exceeds model.max_position_embeddings");
  }
  config.pad_token_id = dataset.special_ids().pad;
  MaskingOptions masking;
  masking.mlm_probability = opt.mlm_probability;
  masking.mask_replace_prob = opt.mask_replace_prob;
  masking.random_replace_prob = opt.random_replace_prob;
  masking.vocab_size = dataset.vocab_size();
  masking.special_ids = dataset.special_ids();
  masking.seed = opt.seed;

  // --- The model and optimizer: same initial weights on every rank ---------
  torch::manual_seed(opt.seed);
  BertForMaskedLM model(config);
  InitBertWeights(model);
  if (options.initialization == protocol::kModelInitLocalAttention && !warm_start && !resume_from) {
    if (const std::string error = protocol::ModelInitializationSizeError(
            options.initialization, config.hidden_size, config.num_attention_heads);
        !error.empty()) {
      throw EngineError(FailureCause::kSpecError, "model.initialization: " + error);
    }
    InitLocalAttention(model);
    if (rank == 0) {
      observer.OnLog("info", DescribeLocalAttentionInit(config));
    }
  }
  if (warm_start) {
    LoadWarmStartWeights(options.init_from, *model);
    if (rank == 0) {
      observer.OnLog("info", "warm start from " + options.init_from + " (" + std::to_string(config.num_hidden_layers) +
                                 " layers, hidden " + std::to_string(config.hidden_size) + ", vocabulary " +
                                 std::to_string(config.vocab_size) + "): step 0, fresh optimizer and schedule");
    }
  }
  model->to(device);
  model->train();
  AdamWOptions adamw;
  adamw.weight_decay = opt.weight_decay;
  FlatAdamW optimizer(model->NamedParameters(), adamw);
  const int64_t warmup = opt.warmup_steps > 0 ? opt.warmup_steps
                                              : static_cast<int64_t>(std::ceil(opt.warmup_ratio * opt.max_steps));
  // Dropout draws from the default generator, seeded per rank.
  torch::manual_seed(MixKey(opt.seed, 0x44524f50 /* "DROP" */, static_cast<uint64_t>(rank)));

  // --- Resume from the newest checkpoint that verifies --------------------
  int64_t step = 0, consumed = 0;
  if (const auto& path = resume_from) {
    for (const std::string& why : skipped) observer.OnLog("warning", "skipping checkpoint " + why);
    CheckpointData ckpt = ReadCheckpoint(*path);
    const torch::Tensor params = ckpt.optimizer[0].second;
    if (params.numel() != optimizer.params().numel()) {
      throw EngineError(FailureCause::kSpecError, *path + ": its model does not match the configured model sizes");
    }
    torch::NoGradGuard no_grad;
    optimizer.params().copy_(params);
    optimizer.exp_avg().copy_(ckpt.optimizer[1].second);
    optimizer.exp_avg_sq().copy_(ckpt.optimizer[2].second);
    optimizer.set_step(ckpt.optimizer[3].second.item<int64_t>());
    step = ckpt.step;
    consumed = ckpt.consumed_samples;
    if (ckpt.world_size == W && ckpt.rng_states.size() == static_cast<size_t>(W)) {
      SetGeneratorState(torch::kCPU, ckpt.rng_states[static_cast<size_t>(rank)]);
      if (device.is_cuda() && ckpt.cuda_rng_states.size() == static_cast<size_t>(W)) {
        SetGeneratorState(device, ckpt.cuda_rng_states[static_cast<size_t>(rank)]);
      } else if (device.is_cuda()) {
        observer.OnLog("warning", "the checkpoint holds no CUDA generator states (written by a CPU run or an "
                                  "older engine): GPU dropout continues from a fresh seed");
      }
    } else {  // a different world: the data position is re-split, dropout re-seeded
      torch::manual_seed(MixKey(opt.seed ^ static_cast<uint64_t>(step), 0x44524f50, static_cast<uint64_t>(rank)));
    }
    observer.OnLog("info", "resumed from " + std::filesystem::path(*path).filename().string() + " (step " +
                               std::to_string(step) + ", " + std::to_string(consumed) + " samples consumed, " +
                               std::to_string(ckpt.world_size) + " -> " + std::to_string(W) + " ranks)");
  } else {
    for (const std::string& why : skipped) observer.OnLog("warning", "skipping checkpoint " + why);
    torch::NoGradGuard no_grad;
    world->Broadcast(optimizer.params());  // rank 0's initial weights everywhere
  }
  if (rank == 0) {
    std::error_code ec;
    std::filesystem::create_directories(checkpoints_dir, ec);
    PruneCheckpoints(checkpoints_dir, 0);  // removes stale temporary directories only
  }

  LoaderOptions loader_options;
  loader_options.batch_size = B;
  loader_options.world_size = W;
  loader_options.rank = rank;
  loader_options.accumulation = A;
  loader_options.start_sample = consumed;
  loader_options.max_steps = opt.max_steps - step;
  MlmBatchLoader loader(train, masking, loader_options);
  const int64_t samples_per_step = loader.samples_per_step();  // B*W*A

  const bool has_eval = dataset.has_split("validation");
  MaskingOptions eval_masking = masking;
  eval_masking.stream = 1;
  const MlmMasker eval_masker(eval_masking);
  std::string peak_source;
  const double peak = PeakFlops(device, bf16, opt.peak_flops, &peak_source);
  if (rank == 0) {
    char peak_text[64];
    std::snprintf(peak_text, sizeof peak_text, "%.1f TFLOP/s", peak / 1e12);
    observer.OnLog("info", "MFU peak per device (" + std::string(bf16 ? "bf16" : "fp32") + "): " +
                               (peak > 0 ? std::string(peak_text) + " from " : std::string()) + peak_source);
  }
  CheckpointWriter writer(checkpoints_dir, opt.save_total_limit,
                          [&observer](const WrittenCheckpoint& c) { observer.OnCheckpoint(c); });

  PretrainResult result;
  auto evaluate = [&] {
    const EvalResult e = Evaluate(model, dataset.split("validation"), eval_masker, opt.eval_max_blocks, B, device,
                                  bf16, *world);
    observer.OnMetric("eval/loss", e.loss, step);
    observer.OnMetric("eval/accuracy", e.accuracy, step);
    observer.OnMetric("eval/perplexity", e.perplexity, step);
    result.last_eval_loss = e.loss;
    result.last_eval_accuracy = e.accuracy;
  };

  // Every rank takes part (the RNG states are gathered); rank 0 writes.
  int64_t saved_step = resume_from ? step : -1;  // the step of the newest checkpoint on disk
  auto save_checkpoint = [&] {
    // The only stall: copies of the weights, moments and RNG states off the device.
    CheckpointData data;
    data.step = step;
    data.consumed_samples = consumed;
    data.world_size = W;
    data.seed = opt.seed;
    data.config = config;
    data.rng_states = GatherStates(*world, GeneratorState(torch::kCPU));
    if (device.is_cuda()) data.cuda_rng_states = GatherStates(*world, GeneratorState(device));
    if (rank == 0) {
      data.model = CpuCopies(model->NamedParameters());
      data.optimizer = CpuCopies({{"params", optimizer.params()},
                                  {"exp_avg", optimizer.exp_avg()},
                                  {"exp_avg_sq", optimizer.exp_avg_sq()},
                                  {"step", torch::tensor(optimizer.step())}});
      nlohmann::json extra = {{"max_steps", opt.max_steps}, {"warmup_steps", warmup},
                              {"learning_rate", opt.learning_rate}, {"per_device_batch_size", B},
                              {"gradient_accumulation_steps", A}};
      data.trainer_json = extra.dump();
      writer.Submit(std::move(data));
    }
    saved_step = step;
  };

  // --- The loop ------------------------------------------------------------
  torch::Tensor window_loss = torch::zeros({}, SumOptions(device));
  int64_t window_steps = 0, window_tokens = 0;
  double window_flops = 0;
  auto window_start = Clock::now();
  while (step < opt.max_steps) {
    // A micro-batches of this rank; the loss is normalised by the masked
    // tokens of the whole global batch, so W ranks of B equal one rank of W*B.
    std::vector<MlmBatch> micro;
    double local_masked = 0;
    for (int64_t k = 0; k < A; ++k) {
      micro.push_back(loader.Next());
      local_masked += static_cast<double>(micro.back().labels.size());
    }
    // One small all-reduce: the global masked count, and whether any rank was
    // asked to stop or to pause (so that every rank stops at the same step boundary).
    torch::Tensor step_info =
        torch::tensor({local_masked, observer.Cancelled() ? 1.0 : 0.0, observer.PauseRequested() ? 1.0 : 0.0},
                      torch::kFloat64)
            .to(SumOptions(device));
    world->AllReduceSum(step_info);
    step_info = step_info.to(torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU));
    if (step_info[1].item<double>() > 0) {
      result.cancelled = true;
      break;
    }
    if (step_info[2].item<double>() > 0) {  // checkpointed below, after the loop
      result.paused = true;
      break;
    }
    const double denominator = std::max(1.0, step_info[0].item<double>());

    optimizer.ZeroGrad();
    for (const MlmBatch& batch : micro) {
      const int64_t M = static_cast<int64_t>(batch.labels.size());
      if (M == 0) continue;
      const torch::Tensor ids = ToDevice(batch.input_ids, {B, T}, device);              // (B,T)
      const torch::Tensor positions = ToDevice(batch.masked_positions, {M}, device);   // (M)
      const torch::Tensor labels = ToDevice(batch.labels, {M}, device);                // (M)
      torch::Tensor loss;
      {
        AutocastScope autocast(device, bf16);
        const torch::Tensor logits = model->MaskedLogits(ids, positions);  // (M,V), head on masked rows only
        loss = torch::cross_entropy_loss(logits.to(torch::kFloat32), labels, {}, at::Reduction::Sum) / denominator;
      }
      loss.backward();
      if (runtime.after_backward) runtime.after_backward();
      window_loss += loss.detach().to(window_loss.scalar_type());
      window_flops += 3.0 * (B * BertForwardFlops(config, T, 0) + BertForwardFlops(config, 0, M));
    }
    // Each rank's gradient is its share of d(global loss); their sum is the whole.
    world->AllReduceSum(optimizer.grads());
    const double grad_norm = optimizer.ClipGradNorm(opt.max_grad_norm);
    const double lr = LinearScheduleLr(opt.learning_rate, step, warmup, opt.max_steps);
    optimizer.Step(lr);
    if (runtime.after_optimizer_step) runtime.after_optimizer_step();
    ++step;
    consumed += samples_per_step;
    ++window_steps;
    window_tokens += samples_per_step * T;

    if (opt.logging_steps > 0 && (step % opt.logging_steps == 0 || step == opt.max_steps)) {
      world->AllReduceSum(window_loss);  // the global loss of each step, summed over the window
      const double seconds = std::chrono::duration<double>(Clock::now() - window_start).count();
      observer.OnMetric("train/loss", window_loss.item<double>() / window_steps, step);
      observer.OnMetric("train/learning_rate", LinearScheduleLr(opt.learning_rate, step, warmup, opt.max_steps), step);
      observer.OnMetric("train/grad_norm", grad_norm, step);
      observer.OnMetric("train/tokens_per_second", window_tokens / seconds, step);
      if (peak > 0) observer.OnMetric("train/mfu", window_flops / seconds / peak, step);
      observer.OnMetric("train/epoch", static_cast<double>(consumed) / train.blocks(), step);
      observer.OnProgress(step, opt.max_steps);
      window_loss.zero_();
      window_steps = window_tokens = 0;
      window_flops = 0;
      window_start = Clock::now();
    }
    if (has_eval && opt.eval_steps > 0 && step % opt.eval_steps == 0) evaluate();
    // Every save_steps steps, and always at the end (save_steps 0: only then),
    // so that a finished run always leaves a checkpoint to export from.
    if (step == opt.max_steps || (opt.save_steps > 0 && step % opt.save_steps == 0)) save_checkpoint();
  }
  // A pause leaves a checkpoint at the step reached, so that the next run
  // resumes exactly here (optimizer, schedule, RNG and data position).
  if (result.paused && saved_step != step) save_checkpoint();
  if (!result.cancelled && !result.paused && has_eval && (opt.eval_steps == 0 || step % opt.eval_steps != 0)) {
    evaluate();
  }
  writer.Wait();
  world->Barrier();
  result.steps_done = step;
  return result;
}

}  // namespace bert::engine
