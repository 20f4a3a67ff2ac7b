#include "spec/yaml_scalar.h"

#include <gtest/gtest.h>

#include "spec/did_you_mean.h"

namespace bert::spec {
namespace {

TEST(YamlScalarTest, Integers) {
  EXPECT_EQ(*ParseYamlInteger("32000", 0, 1 << 30), 32000);
  EXPECT_EQ(*ParseYamlInteger("32_000", 0, 1 << 30), 32000);
  EXPECT_EQ(*ParseYamlInteger("1e5", 0, 1 << 30), 100000);
  EXPECT_EQ(*ParseYamlInteger("-3", -10, 10), -3);
  EXPECT_EQ(ParseYamlInteger("abc", 0, 10).status().message(), "expected an integer, got 'abc'");
  EXPECT_EQ(ParseYamlInteger("1.5", 0, 10).status().message(), "expected an integer, got '1.5'");
  EXPECT_EQ(ParseYamlInteger("0x10", 0, 100).status().message(), "expected an integer, got '0x10'");
  EXPECT_EQ(ParseYamlInteger("3000000000", 0, 2147483647).status().message(),
            "must be between 0 and 2147483647");
  EXPECT_FALSE(ParseYamlInteger("99999999999999999999999", 0, 10).ok());
}

TEST(YamlScalarTest, DoublesAndBools) {
  EXPECT_DOUBLE_EQ(*ParseYamlDouble("5e-5"), 5e-5);
  EXPECT_DOUBLE_EQ(*ParseYamlDouble("0.15"), 0.15);
  EXPECT_EQ(ParseYamlDouble("nan").status().message(), "expected a number, got 'nan'");
  EXPECT_FALSE(ParseYamlDouble("inf").ok());
  EXPECT_FALSE(ParseYamlDouble("").ok());
  EXPECT_TRUE(*ParseYamlBool("Yes"));
  EXPECT_FALSE(*ParseYamlBool("off"));
  EXPECT_EQ(ParseYamlBool("maybe").status().message(), "expected true or false, got 'maybe'");
}

TEST(DidYouMeanTest, SuggestsCloseAndForeignNames) {
  const std::vector<std::string> fields = {"max_steps", "per_device_batch_size", "learning_rate"};
  EXPECT_EQ(SuggestKey("max_step", fields), "max_steps");
  EXPECT_EQ(SuggestKey("learning_rte", fields), "learning_rate");
  EXPECT_EQ(SuggestKey("per_device_train_batch_size", fields), "per_device_batch_size");
  EXPECT_EQ(SuggestKey("colour", fields), "");
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
}

}  // namespace
}  // namespace bert::spec
