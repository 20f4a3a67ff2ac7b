// DistributedOptions: where a rank sits in a training world and how the ranks
// meet (docs/worker-protocol.md, "distributed"). Plain data, no libtorch.
#pragma once

#include <cstdint>
#include <string>

namespace bert::engine {

struct DistributedOptions {
  std::string backend = "gloo";  // "gloo" (CPU) or "nccl" (CUDA)
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;        // the CUDA device index on this host
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;   // rank 0 serves the TCP store here
  int64_t timeout_seconds = 300;
};

}  // namespace bert::engine
