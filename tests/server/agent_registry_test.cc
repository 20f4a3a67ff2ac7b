// The agent registry alone: leases on a fake clock, the pieces an agent runs
// and the room they leave, outboxes and deliveries.
#include "server/agent_registry.h"

#include "gtest/gtest.h"

namespace bert::server {
namespace {

v1::AgentInfo Agent(const std::string& id, int accelerators = 0, const std::string& slots = "") {
  v1::AgentInfo info;
  info.set_id(id);
  info.add_pools("cpu");
  if (accelerators > 0) {
    info.mutable_resources()->set_accelerator(v1::CUDA);
    info.mutable_resources()->set_accelerator_count(accelerators);
  }
  if (!slots.empty()) (*info.mutable_labels())["slots"] = slots;
  return info;
}

class AgentRegistryTest : public ::testing::Test {
 protected:
  FakeClock clock_{absl::FromUnixSeconds(1'000)};
  AgentRegistry registry_{&clock_, absl::Seconds(10)};
};

TEST_F(AgentRegistryTest, LeasesExpireWithoutHeartbeats) {
  registry_.Register(Agent("a"));
  EXPECT_TRUE(registry_.Live("a"));
  clock_.Advance(absl::Seconds(8));
  registry_.Heartbeat("a");
  clock_.Advance(absl::Seconds(8));
  EXPECT_TRUE(registry_.TakeExpired().empty());
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(registry_.TakeExpired(), std::vector<std::string>{"a"});
  EXPECT_FALSE(registry_.Live("a"));
  v1::AgentInfo info;
  EXPECT_TRUE(registry_.MarkUnhealthy("a", &info));
  EXPECT_FALSE(info.healthy());
  EXPECT_FALSE(registry_.MarkUnhealthy("a", &info)) << "only once";
}

TEST_F(AgentRegistryTest, RegisterKeepsTheFirstRegistrationTime) {
  const auto first = registry_.Register(Agent("a")).registered_at();
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(registry_.Register(Agent("a")).registered_at().seconds(), first.seconds());
}

TEST_F(AgentRegistryTest, PiecesTakeRoomAndGiveItBack) {
  registry_.Register(Agent("cpu1"));
  registry_.Register(Agent("gpu", 4, "2"));
  ASSERT_EQ(registry_.FreeRooms().size(), 2u);
  const PieceKey prep{"j", v1::PREPARE, 0}, rank{"j", v1::PRETRAIN, 0};
  registry_.Run(prep, "cpu1", PieceUse{true, 0});
  registry_.Run(rank, "gpu", PieceUse{false, 4});
  std::vector<AgentRoom> rooms = registry_.FreeRooms();
  ASSERT_EQ(rooms.size(), 1u) << "cpu1 is full";
  EXPECT_EQ(rooms[0].id, "gpu");
  EXPECT_EQ(rooms[0].free_accelerators, 0);
  EXPECT_EQ(rooms[0].free_cpu_slots, 2);
  EXPECT_EQ(registry_.PiecesOf("gpu"), std::set<PieceKey>{rank});
  EXPECT_EQ(registry_.AgentOf(prep), "cpu1");
  registry_.Release(prep);
  registry_.Release(prep);  // twice is harmless
  EXPECT_FALSE(registry_.AgentOf(prep).has_value());
  EXPECT_EQ(registry_.FreeRooms().size(), 2u);
  // Moving a piece to another agent releases it from the first.
  registry_.Run(rank, "cpu1", PieceUse{true, 0});
  EXPECT_TRUE(registry_.PiecesOf("gpu").empty());
  EXPECT_EQ(registry_.FreeRooms().size(), 1u);
}

TEST_F(AgentRegistryTest, DeadAgentsHaveNoRoom) {
  registry_.Register(Agent("a"));
  clock_.Advance(absl::Seconds(11));
  EXPECT_TRUE(registry_.FreeRooms().empty());
}

TEST_F(AgentRegistryTest, OutboxesDeliverInOrderAndExpiryDropsThem) {
  registry_.Register(Agent("a"));
  v1::Assignment first, second;
  first.mutable_ref()->set_job_id("j1");
  second.mutable_ref()->set_job_id("j2");
  registry_.Enqueue("a", first);
  registry_.Enqueue("a", second);
  EXPECT_EQ(registry_.Undelivered("a").size(), 2u);
  EXPECT_EQ(registry_.Dequeue("a")->ref().job_id(), "j1");
  registry_.MarkDelivered(KeyOf(first.ref()), clock_.Now());
  EXPECT_EQ(registry_.DeliveredAt(KeyOf(first.ref())), clock_.Now());
  clock_.Advance(absl::Seconds(11));
  registry_.TakeExpired();
  EXPECT_FALSE(registry_.Dequeue("a").has_value());
}

TEST_F(AgentRegistryTest, RestoredAgentsGetTheirGraceAndUnknownOnesAPlaceholder) {
  v1::AgentInfo known = Agent("a");
  known.set_healthy(true);
  registry_.Restore(known, absl::Seconds(30));
  clock_.Advance(absl::Seconds(20));
  EXPECT_TRUE(registry_.Live("a"));
  registry_.Run(PieceKey{"j", v1::PREPARE, 0}, "ghost", PieceUse{});
  ASSERT_NE(registry_.Find("ghost"), nullptr);
  EXPECT_EQ(registry_.PiecesOf("ghost").size(), 1u);
}

}  // namespace
}  // namespace bert::server
