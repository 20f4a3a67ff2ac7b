// DistributedOptions: where a rank sits in a training world and how the ranks
// meet (docs/worker-protocol.md, "distributed"). Plain data, no libtorch: the
// worker protocol's "distributed" part, whose fields and defaults are written
// once in protocol/worker_config.h. An empty backend means the device's default
// and is resolved (protocol::ResolvedBackend) before the engine gets it.
#pragma once

#include "protocol/worker_config.h"

namespace bert::engine {

using DistributedOptions = protocol::WorkerDistributedConfig;

}  // namespace bert::engine
