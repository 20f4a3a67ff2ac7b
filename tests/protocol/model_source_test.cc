// model.from's references and the artifact that holds a warm start's weights:
// the rule the spec library, bertd and the agent share.
#include "protocol/model_source.h"

#include <gtest/gtest.h>

namespace bert::protocol {
namespace {

TEST(ModelSourceTest, JobReferencesParse) {
  auto model = ParseJobModelReference("job:j-20261201-030000123-ab12");
  ASSERT_TRUE(model.has_value());
  EXPECT_EQ(model->job_id, "j-20261201-030000123-ab12");
  EXPECT_FALSE(model->checkpoint_step.has_value());
  auto checkpoint = ParseJobModelReference("job:j-1/checkpoint-500");
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->job_id, "j-1");
  EXPECT_EQ(checkpoint->checkpoint_step, 500);
  for (const char* bad :
       {"job:", "job:/checkpoint-1", "job:a/b", "job:a/checkpoint-", "job:a/checkpoint-1x",
        "job:..", "job:a b", "job:a/checkpoint-1/x", "models/bert", "JOB:a"}) {
    EXPECT_FALSE(ParseJobModelReference(bad).has_value()) << bad;
  }
  EXPECT_TRUE(IsJobModelReference("job:x"));
  EXPECT_FALSE(IsJobModelReference("/models/job:x"));
}

TEST(ModelSourceTest, TheWeightsArtifact) {
  EXPECT_EQ(WarmStartWeightsId("j-2", "/models/bert-base-uncased"), "j-2/pretrain/warm-start");
  EXPECT_EQ(WarmStartWeightsId("j-2", "job:j-1"), "j-1/export/model");
  EXPECT_EQ(WarmStartWeightsId("j-2", "job:j-1/checkpoint-40"), "j-1/pretrain/checkpoint-40");
  EXPECT_EQ(WarmStartWeightsId("j-2", ""), "");
  EXPECT_EQ(WarmStartWeightsId("j-2", "job:"), "");
}

}  // namespace
}  // namespace bert::protocol
