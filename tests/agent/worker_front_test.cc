// agent/worker_front.h: which worker runs the libtorch stages.
#include "agent/worker_front.h"

#include <gtest/gtest.h>

namespace bert::agent {
namespace {

TEST(WorkerFrontTest, AutoChoosesThePythonFrontForHpuOnly) {
  const WorkerFrontOptions o{"auto", "/bin/bert-worker", "/bin/bert-worker-py"};
  EXPECT_EQ(StageWorkerPath(o, "hpu").value(), "/bin/bert-worker-py");
  EXPECT_EQ(StageWorkerPath(o, "cuda").value(), "/bin/bert-worker");
  EXPECT_EQ(StageWorkerPath(o, "cpu").value(), "/bin/bert-worker");
}

TEST(WorkerFrontTest, AnOperatorsChoiceHoldsForEveryDevice) {
  for (const char* device : {"cpu", "cuda", "hpu"}) {
    EXPECT_EQ(StageWorkerPath({"python", "n", "p"}, device).value(), "p") << device;
    EXPECT_EQ(StageWorkerPath({"native", "n", "p"}, device).value(), "n") << device;
  }
}

TEST(WorkerFrontTest, AnUnknownFrontIsRefusedByName) {
  const auto path = StageWorkerPath({"pyhton", "n", "p"}, "cpu");
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(path.status().message().find("\"pyhton\""), std::string::npos) << path.status();
  EXPECT_FALSE(IsWorkerFront("pyhton"));
  EXPECT_TRUE(IsWorkerFront("auto"));
}

}  // namespace
}  // namespace bert::agent
