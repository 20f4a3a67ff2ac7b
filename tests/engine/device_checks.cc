#include "tests/engine/device_checks.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <vector>

#include "engine/autocast_scope.h"
#include "engine/bert_model.h"
#include "engine/checkpoint.h"
#include "engine/distributed.h"
#include "engine/engine_error.h"
#include "engine/trainer.h"
#include "tests/engine/test_corpus.h"

namespace bert::engine::testing {
namespace {

namespace fs = std::filesystem;

// A BERT small enough to train in a second on one CPU core, with dropout on.
BertConfig MicroConfig(int64_t vocab_size, double dropout) {
  BertConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 64;
  c.hidden_dropout_prob = dropout;
  c.attention_probs_dropout_prob = dropout;
  return c;
}

at::Generator DefaultGenerator(const torch::Device& device) {
  return device.is_cpu() ? at::detail::getDefaultCPUGenerator() : at::globalContext().defaultGenerator(device);
}

// The collective's name when `call` throws EngineError naming it, else why not.
template <typename Call>
std::string ExpectRefused(const std::string& collective, const std::string& what, Call call) {
  try {
    call();
  } catch (const EngineError& e) {
    if (std::string(e.what()).find(collective) == std::string::npos) {
      return collective + " refused " + what + " without naming itself: " + e.what() + "\n";
    }
    return "";
  } catch (const std::exception& e) {
    return collective + " refused " + what + " with another error than EngineError: " + e.what() + "\n";
  }
  return collective + " took " + what + "\n";
}

std::string CheckOneWorld(const torch::Device& world_device, const torch::Device& stray_device) {
  DistributedOptions options;  // a world of one: the checks apply there too
  std::string failures;
  const std::unique_ptr<Distributed> world = Distributed::Create(options, world_device);
  const std::string what = "a tensor on " + stray_device.str() + " in a world on " + world_device.str();
  torch::Tensor stray = torch::zeros({2}, torch::TensorOptions().device(stray_device));
  failures += ExpectRefused("all_reduce", what, [&] { world->AllReduceSum(stray); });
  failures += ExpectRefused("broadcast", what, [&] { world->Broadcast(stray); });
  failures += ExpectRefused("all_gather", what, [&] { world->AllGather(stray); });
  torch::Tensor own = torch::zeros({2}, torch::TensorOptions().device(world_device));
  try {
    world->AllReduceSum(own);
    world->Broadcast(own);
    if (world->AllGather(own).size() != 1) failures += "all_gather of a world of one did not return one tensor\n";
    world->Barrier();
  } catch (const std::exception& e) {
    failures += "a collective refused a tensor on the world's own device " + world_device.str() + ": " + e.what() + "\n";
  }
  return failures;
}

double MaxAbsDifference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kFloat32) - b.to(torch::kCPU, torch::kFloat32)).abs().max().item<double>();
}

// Records the loop's train/loss per step; asks to stop once `stop_after` steps are done.
class LossRecorder final : public TrainingObserver {
 public:
  explicit LossRecorder(int64_t stop_after) : stop_after_(stop_after) {}
  void OnProgress(int64_t step, int64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    step_ = step;
  }
  void OnMetric(const std::string& name, double value, int64_t step) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (name == "train/loss") losses[step] = value;
  }
  void OnLog(const std::string& level, const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    log += level + ": " + message + "\n";
  }
  void OnCheckpoint(const WrittenCheckpoint&) override {}
  bool Cancelled() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_after_ > 0 && step_ >= stop_after_;
  }

  std::map<int64_t, double> losses;
  std::string log;

 private:
  mutable std::mutex mu_;
  int64_t stop_after_;
  int64_t step_ = 0;
};

}  // namespace

std::string CheckCollectivesTakeOnlyTheWorldsDevice(const torch::Device& device) {
  const torch::Device meta("meta");
  std::string failures = CheckOneWorld(meta, torch::kCPU);  // CPU tensors in a world that is not on the CPU
  if (!device.is_cpu()) failures += CheckOneWorld(device, torch::kCPU);
  if (device.is_cpu()) failures += CheckOneWorld(torch::kCPU, meta);
  // NCCL on a CPU device is a configuration error, said before any rendezvous.
  DistributedOptions nccl;
  nccl.world_size = 2;
  nccl.backend = "nccl";
  try {
    Distributed::Create(nccl, torch::kCPU);
    failures += "a nccl world on the cpu was created\n";
  } catch (const EngineError& e) {
    if (std::string(e.what()).find("nccl") == std::string::npos) failures += std::string("nccl on cpu: ") + e.what() + "\n";
  }
  return failures;
}

std::string CheckAttentionMatchesReference(const torch::Device& device) {
  std::string failures;
  torch::manual_seed(3);
  const BertConfig config = MicroConfig(64, 0.0);
  BertSelfAttention attention(config);
  attention->to(device);
  attention->eval();
  torch::NoGradGuard no_grad;
  const int64_t B = 2, T = 16, C = config.hidden_size, H = config.num_attention_heads, D = C / H;
  const auto on_device = torch::TensorOptions().device(device);
  const torch::Tensor x = torch::randn({B, T, C}).to(device);  // (B,T,C)
  // The second sequence's last 5 positions are padding, masked as BertModel masks them.
  torch::Tensor keep = torch::ones({B, T});
  keep[1].slice(0, T - 5).zero_();
  const torch::Tensor mask_bias =
      ((1.0 - keep.view({B, 1, 1, T})) * std::numeric_limits<float>::lowest()).to(on_device.dtype(torch::kFloat32));
  auto heads = [&](const torch::nn::Linear& linear) {  // (B,T,C) -> (B,H,T,D)
    return torch::nn::functional::linear(x, linear->weight, linear->bias).view({B, T, H, D}).permute({0, 2, 1, 3});
  };
  const torch::Tensor scores =
      torch::matmul(heads(attention->query), heads(attention->key).transpose(-2, -1)) / std::sqrt(double(D));
  const torch::Tensor reference = torch::matmul(torch::softmax(scores + mask_bias, -1), heads(attention->value))
                                      .permute({0, 2, 1, 3})
                                      .reshape({B, T, C});
  for (const bool bf16 : {false, true}) {
    torch::Tensor ours;
    {
      AutocastScope autocast(device, bf16);
      ours = attention(x, mask_bias);
    }
    // bf16 keeps 8 bits of mantissa: its products and softmax differ by ~1e-2.
    const double tolerance = bf16 ? 3e-2 : 1e-5;
    const double difference = MaxAbsDifference(ours, reference);
    if (!(difference <= tolerance)) {
      std::ostringstream why;
      why << "attention (" << (bf16 ? "bf16" : "fp32") << ") differs from the reference by " << difference
          << " (tolerance " << tolerance << ")\n";
      failures += why.str();
    }
  }
  return failures;
}

std::string CheckCheckpointKeepsDeviceRngStates(const torch::Device& device, const std::string& work_dir) {
  std::string failures;
  CheckpointData data;
  data.step = 3;
  data.consumed_samples = 12;
  data.world_size = 2;
  data.seed = 5;
  data.config = MicroConfig(64, 0.1);
  data.model = {{"w", torch::ones({2})}};
  data.optimizer = {{"params", torch::ones({2})}, {"exp_avg", torch::zeros({2})},
                    {"exp_avg_sq", torch::zeros({2})}, {"step", torch::zeros({1})}};
  data.trainer_json = "{}";
  for (int r = 0; r < 2; ++r) data.rng_states.push_back(torch::full({8}, r, torch::kUInt8));
  const std::string plain_dir = WriteCheckpoint(work_dir + "/plain", data).path;

  // Two ranks' GPU generator states: this GPU's now and after a draw, or on
  // other devices two made-up states of the size a CUDA state has.
  torch::Tensor before, after;
  if (device.is_cuda()) {
    at::Generator generator = DefaultGenerator(device);
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      before = generator.get_state();
    }
    (void)torch::rand({1000}, torch::TensorOptions().device(device));
    std::lock_guard<std::mutex> lock(generator.mutex());
    after = generator.get_state();
  } else {
    before = torch::arange(16, torch::kUInt8);
    after = torch::arange(16, 32, torch::kUInt8);
  }
  data.cuda_rng_states = {before, after};
  const std::string cuda_dir = WriteCheckpoint(work_dir + "/cuda", data).path;
  std::string why;
  if (!VerifyCheckpoint(cuda_dir, &why)) failures += "a checkpoint with CUDA states does not verify: " + why + "\n";
  const CheckpointData read = ReadCheckpoint(cuda_dir);
  if (read.cuda_rng_states.size() != 2 || !torch::equal(read.cuda_rng_states[0], before) ||
      !torch::equal(read.cuda_rng_states[1], after)) {
    failures += "cuda_rng.pt does not round-trip each rank's state\n";
  }
  if (read.rng_states.size() != 2 || !torch::equal(read.rng_states[1], data.rng_states[1])) {
    failures += "rng.pt does not round-trip beside cuda_rng.pt\n";
  }
  const CheckpointData plain = ReadCheckpoint(plain_dir);
  if (!plain.cuda_rng_states.empty() || fs::exists(plain_dir + "/cuda_rng.pt")) {
    failures += "a checkpoint without CUDA states gained some\n";
  }
  if (plain.rng_states.size() != 2) failures += "a checkpoint without CUDA states lost its CPU states\n";
  data.cuda_rng_states = {before};  // one state for two ranks
  try {
    WriteCheckpoint(work_dir + "/mismatch", data);
    failures += "a checkpoint with 1 CUDA state for 2 ranks was written\n";
  } catch (const EngineError&) {
  }
  if (device.is_cuda()) {  // the restored state replays the draws made from it
    at::Generator generator = DefaultGenerator(device);
    auto draw_from = [&](const torch::Tensor& state) {
      {
        std::lock_guard<std::mutex> lock(generator.mutex());
        generator.set_state(state);
      }
      return torch::rand({1000}, torch::TensorOptions().device(device)).cpu();
    };
    if (!torch::equal(draw_from(read.cuda_rng_states[0]), draw_from(before))) {
      failures += "the CUDA generator restored from cuda_rng.pt draws other numbers\n";
    }
  }
  return failures;
}

std::string CheckTrainingResumesExactly(const torch::Device& device, const std::string& work_dir) {
  // A corpus of random documents: [CLS] words [SEP], 64 ids, blocks of 32.
  const int64_t vocab = 64, seq_len = 32;
  std::mt19937 rng(11);
  std::vector<uint16_t> stream;
  int64_t documents = 0;
  while (stream.size() < static_cast<size_t>(80 * seq_len)) {
    stream.push_back(2);
    const int length = 5 + static_cast<int>(rng() % 40);
    for (int i = 0; i < length; ++i) stream.push_back(static_cast<uint16_t>(5 + rng() % (vocab - 5)));
    stream.push_back(3);
    ++documents;
  }
  const std::string data_dir = work_dir + "/data";
  WritePackedIds(data_dir, stream, vocab, documents, seq_len, /*validation_blocks=*/8);

  PretrainOptions options;
  options.dataset_dir = data_dir;
  options.model = MicroConfig(vocab, 0.1);  // dropout on: resumes must restore the device's generator
  options.device = device.is_cpu() ? "cpu" : (device.is_cuda() ? "cuda" : device.str());
  options.distributed.local_rank = device.has_index() ? device.index() : 0;
  options.threads = 1;
  TrainingOptions& t = options.training;
  t.max_steps = 6;
  t.per_device_batch_size = 4;
  t.learning_rate = 1e-3;
  t.precision = "fp32";  // bf16's rounding would hide a small divergence
  t.save_steps = 3;
  t.logging_steps = 1;
  t.eval_steps = 0;
  t.peak_flops = 1e12;  // no CPU probe

  options.output_dir = work_dir + "/straight";
  LossRecorder straight(0);
  Pretrain(options, straight);
  options.output_dir = work_dir + "/resumed";
  LossRecorder first_half(3);
  const PretrainResult stopped = Pretrain(options, first_half);
  LossRecorder second_half(0);
  Pretrain(options, second_half);

  std::string failures;
  if (!stopped.cancelled || stopped.steps_done != 3) failures += "the first half did not stop after step 3\n";
  if (second_half.log.find("resumed from checkpoint-3") == std::string::npos) {
    failures += "the second half did not resume from checkpoint-3:\n" + second_half.log;
  }
  const double tolerance = device.is_cpu() ? 0.0 : 1e-4;
  for (int64_t step = 1; step <= 6; ++step) {
    const auto& resumed = step <= 3 ? first_half.losses : second_half.losses;
    if (!straight.losses.count(step) || !resumed.count(step)) {
      failures += "no train/loss for step " + std::to_string(step) + "\n";
      continue;
    }
    const double a = straight.losses.at(step), b = resumed.at(step);
    if (!std::isfinite(a) || std::abs(a - b) > tolerance * std::abs(a)) {
      std::ostringstream why;
      why.precision(10);
      why << "step " << step << ": loss " << b << " after the resume, " << a << " straight through\n";
      failures += why.str();
    }
  }
  return failures;
}

}  // namespace bert::engine::testing
