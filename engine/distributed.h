// Distributed: the ranks of one training run, over torch's c10d.
//
// Gloo on CPU, NCCL on CUDA; the ranks meet through a TCP store at
// master_addr:master_port (rank 0 serves it), on one host or across hosts.
// A world of one needs no process group and every collective is a no-op.
// Collectives are blocking and must be called by every rank in the same order,
// from one thread.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/distributed_options.h"

namespace bert::engine {

class Distributed {
 public:
  // Joins the world (blocks until every rank has). Throws EngineError on bad
  // options and c10::Error when the rendezvous fails.
  static std::unique_ptr<Distributed> Create(const DistributedOptions& options);
  virtual ~Distributed() = default;

  int64_t rank() const { return rank_; }
  int64_t world_size() const { return world_size_; }

  // In place: every rank ends with the element-wise sum over ranks.
  virtual void AllReduceSum(torch::Tensor& tensor) = 0;
  // In place: every rank ends with rank 0's values.
  virtual void Broadcast(torch::Tensor& tensor) = 0;
  // Every rank's `tensor` (same shape everywhere), in rank order.
  virtual std::vector<torch::Tensor> AllGather(const torch::Tensor& tensor) = 0;
  virtual void Barrier() = 0;

 protected:
  Distributed(int64_t rank, int64_t world_size) : rank_(rank), world_size_(world_size) {}

 private:
  int64_t rank_;
  int64_t world_size_;
};

}  // namespace bert::engine
