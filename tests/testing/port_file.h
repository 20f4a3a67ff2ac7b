// Waiting for a server started by a test to write the port it listens on
// (bertd --port-file).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "tests/testing/child_process.h"

namespace bert::testing {

// Polls `path` until it holds a port number; nullopt when `server` exits or
// `timeout` passes first.
std::optional<int> WaitForPortFile(const std::string& path, ChildProcess& server,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace bert::testing
