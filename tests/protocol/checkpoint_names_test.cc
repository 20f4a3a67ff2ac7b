// Checkpoint directory names (protocol/checkpoint_names.h).
#include "protocol/checkpoint_names.h"

#include <gtest/gtest.h>

namespace bert::protocol {
namespace {

TEST(CheckpointNamesTest, FormatsAndParsesTheStep) {
  EXPECT_EQ(CheckpointDirName(500), "checkpoint-500");
  EXPECT_EQ(CheckpointDirName(0), "checkpoint-0");
  for (const int64_t step : {int64_t{0}, int64_t{1}, int64_t{100000}, int64_t{9007199254740993}}) {
    EXPECT_EQ(ParseCheckpointStep(CheckpointDirName(step)), step);
  }
  EXPECT_EQ(ParseCheckpointStep("checkpoint-0042"), 42);
}

TEST(CheckpointNamesTest, RefusesAnythingElse) {
  for (const char* name :
       {"checkpoint-", "checkpoint-x", "checkpoint--1", "checkpoint-+1", "checkpoint-12a",
        "checkpoint- 1", "checkpoints", "model", "Checkpoint-1", ".checkpoint-5.tmp",
        "checkpoint-5.tmp", "checkpoint-99999999999999999999"}) {
    EXPECT_EQ(ParseCheckpointStep(name), std::nullopt) << name;
  }
}

TEST(CheckpointNamesTest, TemporaryNames) {
  EXPECT_EQ(CheckpointTempDirName(500), ".checkpoint-500.tmp");
  EXPECT_TRUE(IsCheckpointTempDirName(CheckpointTempDirName(7)));
  EXPECT_FALSE(IsCheckpointTempDirName("checkpoint-7"));
  EXPECT_FALSE(IsCheckpointTempDirName(".checkpoint-7"));
  EXPECT_FALSE(IsCheckpointTempDirName(".other.tmp"));
}

}  // namespace
}  // namespace bert::protocol
