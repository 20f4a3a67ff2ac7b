#include "protocol/rendezvous.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace bert::protocol {
namespace {

// Binds a listening socket of `family` on the wildcard address and port 0;
// the port the kernel gave it, or the errno of the step that failed.
absl::StatusOr<int> BindWildcard(int family) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_storage address{};
  socklen_t length = 0;
  if (family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    const int off = 0;  // dual-stack: the port is then free for IPv4 too
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    length = sizeof(sockaddr_in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&address);
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(INADDR_ANY);
    length = sizeof(sockaddr_in);
  }
  absl::StatusOr<int> port;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    port = absl::UnavailableError(absl::StrCat("bind a free port: ", strerror(errno)));
  } else {
    port = static_cast<int>(ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                                    : reinterpret_cast<sockaddr_in*>(&address)->sin_port));
  }
  close(fd);
  return port;
}

}  // namespace

bool MasterChoosesPort(const v1::Rendezvous& rendezvous) {
  return rendezvous.master_port() == kPortChosenByMaster;
}

bool SpansHosts(const v1::Rendezvous& rendezvous) {
  return rendezvous.world_size() > std::max(1, rendezvous.local_world_size());
}

absl::Status CheckRendezvousPort(int64_t port) {
  if (port >= 1 && port <= 65535) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("rendezvous port ", port, " is not a TCP port (1..65535)"));
}

absl::StatusOr<int> PickFreeRendezvousPort() {
  absl::StatusOr<int> port = BindWildcard(AF_INET6);
  if (!port.ok()) port = BindWildcard(AF_INET);
  return port;
}

}  // namespace bert::protocol
