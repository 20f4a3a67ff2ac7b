#include "engine/distributed.h"

// USE_C10D_GLOO and USE_C10D_NCCL come with libtorch's CMake targets (or
// scripts/gpu-check.sh's compiler line, where the Gloo and NCCL headers exist).
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(USE_C10D_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>

#include "engine/engine_error.h"
#include "engine/torch_version.h"

namespace bert::engine {
namespace {

// A world of one: collectives return their input.
class SingleProcess final : public Distributed {
 public:
  explicit SingleProcess(const torch::Device& device) : Distributed(0, 1, device) {}

 private:
  void DoAllReduceSum(torch::Tensor&) override {}
  void DoBroadcast(torch::Tensor&) override {}
  std::vector<torch::Tensor> DoAllGather(const torch::Tensor& tensor) override { return {tensor}; }
  void DoBarrier() override {}
};

// What Create() makes: since libtorch 2.0 Gloo and NCCL are c10d::Backends
// (which a ProcessGroup dispatches to), before that ProcessGroups themselves.
// Both have the collectives used here, with the same signatures.
#if BERT_TORCH_AT_LEAST(2, 0)
using CreatedGroup = c10d::Backend;
#else
using CreatedGroup = c10d::ProcessGroup;
#endif

// Several ranks over a c10d process group (Adopt) or backend (Create).
template <typename Group>
class ProcessGroupWorld final : public Distributed {
 public:
  ProcessGroupWorld(int64_t rank, int64_t world_size, const torch::Device& device,
                    c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<Group> group)
      : Distributed(rank, world_size, device), store_(std::move(store)), group_(std::move(group)) {}

 private:
  void DoAllReduceSum(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> tensors = {tensor};
    group_->allreduce(tensors)->wait();
  }
  void DoBroadcast(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> tensors = {tensor};
    group_->broadcast(tensors)->wait();
  }
  std::vector<torch::Tensor> DoAllGather(const torch::Tensor& tensor) override {
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int64_t r = 0; r < world_size(); ++r) outputs[0].push_back(torch::empty_like(tensor));
    std::vector<torch::Tensor> inputs = {tensor.contiguous()};
    group_->allgather(outputs, inputs)->wait();
    return outputs[0];
  }
  void DoBarrier() override { group_->barrier()->wait(); }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Group> group_;
};

}  // namespace

void RequireOnDevice(const char* collective, const torch::Tensor& tensor, const torch::Device& device) {
  if (!tensor.defined()) {
    throw EngineError(FailureCause::kInternal, std::string(collective) + ": an undefined tensor");
  }
  if (tensor.device() != device) {
    throw EngineError(FailureCause::kInternal, std::string(collective) + ": a tensor on " + tensor.device().str() +
                                                   ", but the world's device is " + device.str());
  }
}

void Distributed::AllReduceSum(torch::Tensor& tensor) {
  RequireOnDevice("all_reduce", tensor, device_);
  DoAllReduceSum(tensor);
}

void Distributed::Broadcast(torch::Tensor& tensor) {
  RequireOnDevice("broadcast", tensor, device_);
  DoBroadcast(tensor);
}

std::vector<torch::Tensor> Distributed::AllGather(const torch::Tensor& tensor) {
  RequireOnDevice("all_gather", tensor, device_);
  return DoAllGather(tensor);
}

void Distributed::Barrier() { DoBarrier(); }

std::unique_ptr<Distributed> Distributed::Adopt(c10::intrusive_ptr<c10d::ProcessGroup> group,
                                               const DistributedOptions& o, const torch::Device& device) {
  if (!group) throw EngineError(FailureCause::kInternal, "distributed: no process group to adopt");
  if (group->getRank() != o.rank || group->getSize() != o.world_size) {
    throw EngineError(FailureCause::kSpecError,
                      "distributed: the given process group is rank " + std::to_string(group->getRank()) + " of " +
                          std::to_string(group->getSize()) + ", but the config says rank " + std::to_string(o.rank) +
                          " of " + std::to_string(o.world_size));
  }
  return std::make_unique<ProcessGroupWorld<c10d::ProcessGroup>>(o.rank, o.world_size, device,
                                                                  c10::intrusive_ptr<c10d::Store>(), std::move(group));
}

std::unique_ptr<Distributed> Distributed::Create(const DistributedOptions& o, const torch::Device& device) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    throw EngineError(FailureCause::kSpecError, "distributed: rank " + std::to_string(o.rank) +
                                                    " is outside world_size " + std::to_string(o.world_size));
  }
  if (o.world_size == 1) return std::make_unique<SingleProcess>(device);
  if (o.master_port < 1 || o.master_port > 65535) {
    throw EngineError(FailureCause::kSpecError, "distributed: master_port " + std::to_string(o.master_port) +
                                                    " is not a TCP port");
  }
  // Backend and device agree before the rendezvous, which would wait for ranks that never come.
  if (o.backend == "nccl" && !device.is_cuda()) {
    throw EngineError(FailureCause::kSpecError, "distributed: backend \"nccl\" needs a cuda device, not " + device.str());
  }
  const auto timeout = std::chrono::milliseconds(o.timeout_seconds * 1000);
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(o.master_port);
  store_options.isServer = o.rank == 0;
  store_options.numWorkers = static_cast<size_t>(o.world_size);
  store_options.waitWorkers = true;
  store_options.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options);
  c10::intrusive_ptr<CreatedGroup> group;
  if (o.backend == "gloo") {
#if defined(USE_C10D_GLOO)
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->timeout = timeout;
    // Gloo's transport binds to the address the other ranks reach us by: this
    // host's as the agent knows it (local_addr), else the master's on one host
    // (loopback) and for rank 0, else this host's name.
    const bool loopback = o.master_addr == "localhost" || o.master_addr.rfind("127.", 0) == 0;
    options->devices.push_back(!o.local_addr.empty() ? c10d::ProcessGroupGloo::createDeviceForHostname(o.local_addr)
                               : loopback || o.rank == 0
                                   ? c10d::ProcessGroupGloo::createDeviceForHostname(o.master_addr)
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(o.rank),
                                                        static_cast<int>(o.world_size), options);
#else
    throw EngineError(FailureCause::kSpecError, "distributed: backend \"gloo\" needs a libtorch built with Gloo");
#endif
  } else if (o.backend == "nccl") {
#if defined(USE_C10D_NCCL)
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, static_cast<int>(o.rank),
                                                        static_cast<int>(o.world_size), options);
#else
    throw EngineError(FailureCause::kSpecError, "distributed: backend \"nccl\" needs a libtorch built with NCCL");
#endif
  } else if (o.backend == "hccl") {
    throw EngineError(FailureCause::kSpecError,
                      "distributed: backend \"hccl\" is created by Habana's Python bridge: run the Python "
                      "worker (engine/python, docs/gaudi.md), which hands the group to the engine");
  } else {
    throw EngineError(FailureCause::kSpecError,
                      "distributed: unknown backend \"" + o.backend + "\" (expected \"gloo\" or \"nccl\")");
  }
  return std::make_unique<ProcessGroupWorld<CreatedGroup>>(o.rank, o.world_size, device, store, group);
}

}  // namespace bert::engine
