// Distributed: the ranks of one training run, over torch's c10d.
//
// Gloo on CPU, NCCL on CUDA; the ranks meet through a TCP store at
// master_addr:master_port (rank 0 serves it), on one host or across hosts.
// A world of one needs no process group and every collective is a no-op.
// Collectives are blocking and must be called by every rank in the same order,
// from one thread.
//
// Every world has a device, the training device: each collective checks that
// its tensors live there (NCCL takes only CUDA tensors of its own GPU, HCCL
// only HPU ones) and throws EngineError naming the collective otherwise, in a
// world of one process too, so a CPU tensor handed to a CUDA world fails on
// the first call, in any test, instead of inside NCCL on a multi-GPU run.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/distributed_options.h"

namespace c10d {
class ProcessGroup;  // <torch/csrc/distributed/c10d/ProcessGroup.hpp>
}

namespace bert::engine {

class Distributed {
 public:
  // Joins the world (blocks until every rank has); collectives take tensors on
  // `device`. Throws EngineError on bad options and c10::Error when the
  // rendezvous fails.
  static std::unique_ptr<Distributed> Create(const DistributedOptions& options, const torch::Device& device);
  // The world of a process group made elsewhere: by torch.distributed in the
  // Python worker (engine/python), e.g. Habana's "hccl", which only its Python
  // bridge can create. Its rank and size must be the options' (EngineError
  // kSpecError otherwise); the group is shared with its maker.
  static std::unique_ptr<Distributed> Adopt(c10::intrusive_ptr<c10d::ProcessGroup> group,
                                            const DistributedOptions& options, const torch::Device& device);
  virtual ~Distributed() = default;

  int64_t rank() const { return rank_; }
  int64_t world_size() const { return world_size_; }
  const torch::Device& device() const { return device_; }

  // In place: every rank ends with the element-wise sum over ranks.
  void AllReduceSum(torch::Tensor& tensor);
  // In place: every rank ends with rank 0's values.
  void Broadcast(torch::Tensor& tensor);
  // Every rank's `tensor` (same shape everywhere), in rank order, on device().
  std::vector<torch::Tensor> AllGather(const torch::Tensor& tensor);
  void Barrier();

 protected:
  Distributed(int64_t rank, int64_t world_size, const torch::Device& device)
      : rank_(rank), world_size_(world_size), device_(device) {}

 private:
  // The collectives proper, given tensors already checked to be on device().
  virtual void DoAllReduceSum(torch::Tensor& tensor) = 0;
  virtual void DoBroadcast(torch::Tensor& tensor) = 0;
  virtual std::vector<torch::Tensor> DoAllGather(const torch::Tensor& tensor) = 0;
  virtual void DoBarrier() = 0;

  int64_t rank_;
  int64_t world_size_;
  torch::Device device_;
};

// Throws EngineError(kInternal) "COLLECTIVE: a tensor on D, but the world's
// device is E" unless `tensor` is defined and lives on `device`.
void RequireOnDevice(const char* collective, const torch::Tensor& tensor, const torch::Device& device);

}  // namespace bert::engine
