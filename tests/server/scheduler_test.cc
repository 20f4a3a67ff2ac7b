// The pure scheduling function: order, fit, room and gangs.
#include "server/scheduler.h"

#include "gtest/gtest.h"
#include "server/retry_policy.h"

namespace bert::server {
namespace {

PendingTask Task(const std::string& job, int priority, int64_t order, std::string pool = "cpu") {
  PendingTask t;
  t.job_id = job;
  t.priority = priority;
  t.order = order;
  t.stage = v1::PREPARE;
  t.shards = {0};
  t.pool = std::move(pool);
  return t;
}

AgentRoom Agent(const std::string& id, std::vector<std::string> pools = {"cpu"}) {
  AgentRoom a;
  a.id = id;
  a.pools = std::move(pools);
  return a;
}

TEST(SchedulerTest, PriorityThenFifo) {
  std::vector<PendingTask> queue = {Task("old", 0, 1), Task("new", 0, 2), Task("urgent", 5, 3)};
  auto placements = Schedule(queue, {Agent("a"), Agent("b")});
  ASSERT_EQ(placements.size(), 2u);
  EXPECT_EQ(queue[placements[0].task].job_id, "urgent");
  EXPECT_EQ(queue[placements[1].task].job_id, "old");
}

TEST(SchedulerTest, NothingGoesWhereThereIsNoRoomOrPool) {
  std::vector<PendingTask> queue = {Task("j", 0, 1, "train")};
  EXPECT_TRUE(Schedule(queue, {Agent("a")}).empty());
  AgentRoom busy = Agent("b", {"train"});
  busy.free_cpu_slots = 0;
  EXPECT_TRUE(Schedule(queue, {busy}).empty());
  EXPECT_EQ(Schedule(queue, {Agent("c", {"*"})}).size(), 1u);
}

TEST(SchedulerTest, GangIsAllOrNothingOnDistinctAgentsWithDevices) {
  PendingTask gang = Task("g", 0, 1, "gpu");
  gang.stage = v1::PRETRAIN;
  gang.shards = {0, 1};
  gang.accelerator = v1::CUDA;
  gang.devices = 4;
  AgentRoom big = Agent("big", {"gpu"});
  big.accelerator = v1::CUDA;
  big.free_accelerators = 8;
  EXPECT_TRUE(Schedule({gang}, {big}).empty());  // 8 devices on one host is not two hosts
  AgentRoom small = big;
  small.id = "small";
  small.free_accelerators = 2;
  EXPECT_TRUE(Schedule({gang}, {big, small}).empty());
  AgentRoom hpu = big;
  hpu.id = "hpu";
  hpu.accelerator = v1::HPU;
  EXPECT_TRUE(Schedule({gang}, {big, hpu}).empty());
  AgentRoom other = big;
  other.id = "other";
  auto placements = Schedule({gang}, {big, other});
  ASSERT_EQ(placements.size(), 1u);
  EXPECT_EQ(placements[0].agent_ids, (std::vector<std::string>{"big", "other"}));
}

TEST(SchedulerTest, RoomIsUsedUpAcrossTasks) {
  PendingTask t1 = Task("j1", 0, 1, "gpu");
  t1.stage = v1::PRETRAIN;
  t1.accelerator = v1::CUDA;
  t1.devices = 4;
  PendingTask t2 = t1;
  t2.job_id = "j2";
  t2.order = 2;
  AgentRoom gpu = Agent("gpu", {"gpu"});
  gpu.accelerator = v1::CUDA;
  gpu.free_accelerators = 6;
  auto placements = Schedule({t1, t2}, {gpu});
  ASSERT_EQ(placements.size(), 1u);
  EXPECT_EQ(placements[0].task, 0u);
}

TEST(RetryPolicyTest, LimitsDependOnTheCause) {
  EXPECT_EQ(RetryPolicy::AttemptLimit(v1::SPEC_ERROR, 3), 0);
  EXPECT_EQ(RetryPolicy::AttemptLimit(v1::DATA_ERROR, 3), 0);
  EXPECT_EQ(RetryPolicy::AttemptLimit(v1::AGENT_LOST, 3), 6);
  EXPECT_EQ(RetryPolicy::AttemptLimit(v1::WORKER_CRASHED, 3), 3);
  RetryPolicy policy;
  EXPECT_EQ(policy.Backoff(2), absl::Seconds(2));
  EXPECT_EQ(policy.Backoff(3), absl::Seconds(4));
  EXPECT_EQ(policy.Backoff(20), absl::Seconds(60));
}

}  // namespace
}  // namespace bert::server
