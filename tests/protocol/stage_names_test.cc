#include "protocol/stage_names.h"

#include <gtest/gtest.h>

#include <vector>

namespace bert::protocol {
namespace {

TEST(StageNamesTest, EveryStageHasItsWireName) {
  EXPECT_EQ(StageName(v1::PREPARE), "prepare");
  EXPECT_EQ(StageName(v1::TOKENIZER), "tokenizer");
  EXPECT_EQ(StageName(v1::PREPROCESS), "preprocess");
  EXPECT_EQ(StageName(v1::PRETRAIN), "pretrain");
  EXPECT_EQ(StageName(v1::EXPORT), "export");
  EXPECT_EQ(StageName(v1::STAGE_KIND_UNSPECIFIED), "");
  EXPECT_EQ(StageName(static_cast<v1::StageKind>(99)), "");
}

TEST(StageNamesTest, RoundTripsEveryEnumValue) {
  for (int i = v1::StageKind_MIN; i <= v1::StageKind_MAX; ++i) {
    const auto kind = static_cast<v1::StageKind>(i);
    if (kind == v1::STAGE_KIND_UNSPECIFIED) continue;
    const std::optional<v1::StageKind> parsed = ParseStageName(StageName(kind));
    ASSERT_TRUE(parsed.has_value()) << i;
    EXPECT_EQ(*parsed, kind);
  }
}

TEST(StageNamesTest, ParseRejectsOtherSpellings) {
  EXPECT_FALSE(ParseStageName(""));
  EXPECT_FALSE(ParseStageName("PRETRAIN"));
  EXPECT_FALSE(ParseStageName("stage_kind_unspecified"));
  EXPECT_FALSE(ParseStageName("job"));
  EXPECT_FALSE(ParseStageName("pretrain "));
}

TEST(StageNamesTest, PipelineIsInOrderAndFanOutIsTheDataStages) {
  const auto stages = PipelineStages();
  EXPECT_EQ(std::vector<v1::StageKind>(stages.begin(), stages.end()),
            (std::vector<v1::StageKind>{v1::PREPARE, v1::TOKENIZER, v1::PREPROCESS, v1::PRETRAIN,
                                        v1::EXPORT}));
  std::vector<v1::StageKind> fan_out;
  for (v1::StageKind kind : stages) {
    if (IsFanOutStage(kind)) fan_out.push_back(kind);
  }
  EXPECT_EQ(fan_out, (std::vector<v1::StageKind>{v1::PREPARE, v1::PREPROCESS}));
}

}  // namespace
}  // namespace bert::protocol
