#include "tests/testing/port_file.h"

#include <fstream>
#include <thread>

namespace bert::testing {

std::optional<int> WaitForPortFile(const std::string& path, ChildProcess& server,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // The file is written atomically, so a number read from it is complete.
    std::ifstream in(path);
    int port = 0;
    if (in >> port && port > 0) return port;
    if (!server.Running() || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace bert::testing
