#include "engine/distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>

#include "engine/engine_error.h"

namespace bert::engine {
namespace {

// A world of one: collectives return their input.
class SingleProcess final : public Distributed {
 public:
  SingleProcess() : Distributed(0, 1) {}
  void AllReduceSum(torch::Tensor&) override {}
  void Broadcast(torch::Tensor&) override {}
  std::vector<torch::Tensor> AllGather(const torch::Tensor& tensor) override { return {tensor}; }
  void Barrier() override {}
};

// Several ranks over a c10d process group.
class ProcessGroupWorld final : public Distributed {
 public:
  ProcessGroupWorld(int64_t rank, int64_t world_size, c10::intrusive_ptr<c10d::Store> store,
                    c10::intrusive_ptr<c10d::ProcessGroup> group)
      : Distributed(rank, world_size), store_(std::move(store)), group_(std::move(group)) {}

  void AllReduceSum(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> tensors = {tensor};
    group_->allreduce(tensors)->wait();
  }
  void Broadcast(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> tensors = {tensor};
    group_->broadcast(tensors)->wait();
  }
  std::vector<torch::Tensor> AllGather(const torch::Tensor& tensor) override {
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int64_t r = 0; r < world_size(); ++r) outputs[0].push_back(torch::empty_like(tensor));
    std::vector<torch::Tensor> inputs = {tensor.contiguous()};
    group_->allgather(outputs, inputs)->wait();
    return outputs[0];
  }
  void Barrier() override { group_->barrier()->wait(); }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

}  // namespace

std::unique_ptr<Distributed> Distributed::Create(const DistributedOptions& o) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    throw EngineError(FailureCause::kSpecError, "distributed: rank " + std::to_string(o.rank) +
                                                    " is outside world_size " + std::to_string(o.world_size));
  }
  if (o.world_size == 1) return std::make_unique<SingleProcess>();
  if (o.master_port < 1 || o.master_port > 65535) {
    throw EngineError(FailureCause::kSpecError, "distributed: master_port " + std::to_string(o.master_port) +
                                                    " is not a TCP port");
  }
  const auto timeout = std::chrono::milliseconds(o.timeout_seconds * 1000);
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(o.master_port);
  store_options.isServer = o.rank == 0;
  store_options.numWorkers = static_cast<size_t>(o.world_size);
  store_options.waitWorkers = true;
  store_options.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options);
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  if (o.backend == "gloo") {
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->timeout = timeout;
    // Gloo's transport binds to the address the other ranks reach us by: the
    // master's on one host (loopback) and for rank 0, else this host's name.
    const bool loopback = o.master_addr == "localhost" || o.master_addr.rfind("127.", 0) == 0;
    options->devices.push_back(loopback || o.rank == 0
                                   ? c10d::ProcessGroupGloo::createDeviceForHostname(o.master_addr)
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(o.rank),
                                                        static_cast<int>(o.world_size), options);
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
    throw EngineError(FailureCause::kSpecError, "distributed: backend \"hccl\" needs Habana's libtorch build");
  } else {
    throw EngineError(FailureCause::kSpecError,
                      "distributed: unknown backend \"" + o.backend + "\" (expected \"gloo\" or \"nccl\")");
  }
  return std::make_unique<ProcessGroupWorld>(o.rank, o.world_size, store, group);
}

}  // namespace bert::engine
