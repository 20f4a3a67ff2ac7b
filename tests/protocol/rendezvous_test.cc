// The gang rendezvous rule: who chooses the port, when it is published, and
// that the chosen port is really free on this host.
#include "protocol/rendezvous.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include "gtest/gtest.h"

namespace bert::protocol {
namespace {

v1::Rendezvous Gang(int port, int world, int local) {
  v1::Rendezvous rv;
  rv.set_master_address("10.0.0.1");
  rv.set_master_port(port);
  rv.set_world_size(world);
  rv.set_local_world_size(local);
  return rv;
}

TEST(RendezvousTest, PortZeroMeansTheMasterChooses) {
  EXPECT_TRUE(MasterChoosesPort(Gang(kPortChosenByMaster, 2, 1)));
  EXPECT_FALSE(MasterChoosesPort(Gang(29500, 2, 1)));
}

TEST(RendezvousTest, OnlyGangsAcrossHostsPublish) {
  EXPECT_TRUE(SpansHosts(Gang(0, 2, 1)));   // two hosts, one rank each
  EXPECT_TRUE(SpansHosts(Gang(0, 8, 4)));   // two hosts, four ranks each
  EXPECT_FALSE(SpansHosts(Gang(0, 4, 4)));  // one host, four ranks
  EXPECT_FALSE(SpansHosts(Gang(0, 1, 1)));
  EXPECT_FALSE(SpansHosts(Gang(0, 1, 0)));  // unset local_world_size counts as 1
}

TEST(RendezvousTest, PortRangeIsChecked) {
  EXPECT_TRUE(CheckRendezvousPort(1).ok());
  EXPECT_TRUE(CheckRendezvousPort(65535).ok());
  for (int64_t bad : {0L, -1L, 65536L}) {
    absl::Status s = CheckRendezvousPort(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(std::to_string(bad)), std::string::npos) << s;
  }
}

// Binds `port` on the IPv4 wildcard address, as c10d's TCPStore does; the
// socket (caller closes it) or -1.
int BindIpv4Wildcard(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || listen(fd, 1) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(RendezvousTest, PickedPortCanBeBoundAndIsNotAPortInUse) {
  absl::StatusOr<int> port = PickFreeRendezvousPort();
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_TRUE(CheckRendezvousPort(*port).ok());
  // Free: the store can bind it.
  const int store = BindIpv4Wildcard(*port);
  ASSERT_GE(store, 0) << "picked port " << *port << " cannot be bound";
  // While it is held, a new pick never returns it.
  std::set<int> picks;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<int> again = PickFreeRendezvousPort();
    ASSERT_TRUE(again.ok()) << again.status();
    picks.insert(*again);
  }
  EXPECT_FALSE(picks.contains(*port));
  close(store);
}

}  // namespace
}  // namespace bert::protocol
