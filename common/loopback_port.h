// A TCP port on 127.0.0.1 that is free right now (the kernel picks it), for
// rendezvous addresses and servers started by tools and tests on loopback.
#pragma once

#include "absl/status/statusor.h"

namespace bert {

// Another process may take the port before the caller binds it; callers that
// can bind port 0 themselves should do that instead.
absl::StatusOr<int> FreeLoopbackPort();

}  // namespace bert
