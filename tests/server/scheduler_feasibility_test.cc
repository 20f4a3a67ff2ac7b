// WhyUnplaceable: a task that only waits for room is feasible; one that needs
// a pool, an accelerator kind or count, or more hosts than the live agents
// have is not, and the reason names what is missing.
#include "server/scheduler_feasibility.h"

#include "gtest/gtest.h"

namespace bert::server {
namespace {

AgentCapacity Agent(const std::string& id, std::vector<std::string> pools,
                    v1::AcceleratorKind kind = v1::CPU, int32_t accelerators = 0) {
  return AgentCapacity{id, std::move(pools), kind, accelerators};
}

PendingTask Task(v1::StageKind stage, const std::string& pool, v1::AcceleratorKind kind,
                 int32_t devices, int hosts) {
  PendingTask task;
  task.job_id = "j";
  task.stage = stage;
  task.pool = pool;
  task.accelerator = kind;
  task.devices = devices;
  task.shards.resize(hosts);
  return task;
}

std::string Why(const PendingTask& task, const std::vector<AgentCapacity>& agents) {
  return WhyUnplaceable(task, agents).value_or("");
}

TEST(SchedulerFeasibilityTest, AFittingAgentMakesItFeasibleEvenWhenBusy) {
  // Capacity, not free room: busy agents still count.
  EXPECT_EQ(Why(Task(v1::PREPARE, "cpu", v1::CPU, 0, 1), {Agent("a", {"cpu"})}), "");
  EXPECT_EQ(Why(Task(v1::PRETRAIN, "gaudi", v1::HPU, 8, 1), {Agent("g", {"gaudi"}, v1::HPU, 8)}),
            "");
  EXPECT_EQ(Why(Task(v1::PRETRAIN, "train", v1::CUDA, 2, 2),
                {Agent("a", {"train"}, v1::CUDA, 2), Agent("b", {"*"}, v1::CUDA, 4)}),
            "")
      << "an agent serving every pool counts";
}

TEST(SchedulerFeasibilityTest, NoAgentAtAll) {
  EXPECT_EQ(Why(Task(v1::PREPARE, "cpu", v1::CPU, 0, 1), {}),
            "prepare needs pool 'cpu', and no live agent is registered");
}

TEST(SchedulerFeasibilityTest, NoAgentServesThePool) {
  EXPECT_EQ(Why(Task(v1::PRETRAIN, "gaudi", v1::HPU, 8, 1),
                {Agent("c", {"cpu"}), Agent("t", {"train"}, v1::HPU, 8)}),
            "pretrain needs pool 'gaudi', which no live agent serves (pools served: cpu, train)");
}

TEST(SchedulerFeasibilityTest, TheWrongAcceleratorKind) {
  EXPECT_EQ(Why(Task(v1::PRETRAIN, "train", v1::HPU, 1, 1),
                {Agent("c", {"train"}), Agent("g", {"train"}, v1::CUDA, 8)}),
            "pretrain needs HPU accelerators in pool 'train', and its live agents have none "
            "(they have: CPU, CUDA)");
}

TEST(SchedulerFeasibilityTest, TooFewAcceleratorsOnAnyHost) {
  EXPECT_EQ(Why(Task(v1::PRETRAIN, "gaudi", v1::HPU, 8, 1),
                {Agent("g1", {"gaudi"}, v1::HPU, 4), Agent("g2", {"gaudi"}, v1::HPU, 2)}),
            "pretrain needs 8 HPU accelerators on one host in pool 'gaudi', and its live agents "
            "have at most 4");
}

TEST(SchedulerFeasibilityTest, TooFewHostsForTheGang) {
  EXPECT_EQ(Why(Task(v1::PRETRAIN, "train", v1::CPU, 1, 2), {Agent("t", {"train"})}),
            "pretrain needs 2 hosts in pool 'train', and only 1 live agent could take part");
  EXPECT_EQ(Why(Task(v1::PRETRAIN, "gpu", v1::CUDA, 4, 3),
                {Agent("a", {"gpu"}, v1::CUDA, 4), Agent("b", {"gpu"}, v1::CUDA, 4),
                 Agent("c", {"gpu"}, v1::CUDA, 2)}),
            "pretrain needs 3 hosts in pool 'gpu' with 4 CUDA accelerators each, and only 2 live "
            "agents could take part");
}

TEST(SchedulerFeasibilityTest, OnlyLiveAgentsCount) {
  v1::AgentInfo live, gone;
  live.set_id("live");
  live.set_healthy(true);
  live.add_pools("cpu");
  gone.set_id("gone");
  gone.set_healthy(false);
  gone.add_pools("gaudi");
  gone.mutable_resources()->set_accelerator(v1::HPU);
  gone.mutable_resources()->set_accelerator_count(8);
  const std::vector<AgentCapacity> capacity = LiveCapacities({live, gone});
  ASSERT_EQ(capacity.size(), 1u);
  EXPECT_EQ(capacity[0].id, "live");
  EXPECT_NE(Why(Task(v1::PRETRAIN, "gaudi", v1::HPU, 8, 1), capacity), "");
}

}  // namespace
}  // namespace bert::server
