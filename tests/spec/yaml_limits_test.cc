// The cost of reading a spec is bounded: YAML aliases (which yaml-cpp shares,
// so a short text stands for a huge tree) are capped in number, and every
// node the reader visits, an alias's whole value at each use, counts against
// a budget. Each refusal names the limit and the line, and comes fast.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "spec/job_spec.h"
#include "spec/yaml_proto_reader.h"

namespace bert::spec {
namespace {

using ::testing::HasSubstr;

std::string TestData() {
  const char* dir = std::getenv("BERT_SOURCE_DIR");
  return std::string(dir != nullptr ? dir : BERT_TEST_SOURCE_DIR) + "/tests/spec/testdata";
}

// The issue's attack: one source holds a long `paths` list under an anchor,
// and every other source is an alias of it. Sources start on line 4.
std::string AliasBomb(int paths, int aliases) {
  std::string yaml = "name: bomb\ncorpus:\n  sources:\n    - &s {paths: &p [";
  for (int i = 0; i < paths; ++i) absl::StrAppend(&yaml, i == 0 ? "" : ", ", "d/", i, ".txt");
  yaml += "]}\n";
  for (int i = 0; i < aliases; ++i) yaml += "    - *s\n";
  return yaml;
}

struct Timed {
  ParseResult result;
  double seconds;
};

Timed TimedParse(const std::string& yaml) {
  ParseOptions options;
  options.base_dir = TestData();
  options.check_paths = true;  // what bertd's ValidateSpec does by default
  const auto start = std::chrono::steady_clock::now();
  Timed out{ParseJobSpec(yaml, options), 0};
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

TEST(YamlLimitsTest, TheIssuesAliasBombIsRefusedFast) {
  const std::string yaml = AliasBomb(2500, 5000);
  ASSERT_GT(yaml.size(), 60u << 10);  // about the issue's 60 KB
  ASSERT_LT(yaml.size(), 1u << 20);   // under the byte limit: refused for its aliases
  const Timed timed = TimedParse(yaml);
  ASSERT_FALSE(timed.result.ok());
  const std::string errors = FormatErrors("job.yaml", timed.result.errors);
  EXPECT_THAT(errors, HasSubstr(absl::StrCat("the limit is ", kMaxYamlAliases)));
  // The first alias past the limit is on line 4 + 1 + kMaxYamlAliases.
  EXPECT_THAT(errors, HasSubstr(absl::StrCat("job.yaml:", 5 + kMaxYamlAliases, ":")));
  EXPECT_LT(timed.seconds, 2.0) << "was 8.8 s before the bound";
}

TEST(YamlLimitsTest, FewerAliasesOfAHugeValueHitTheNodeBudget) {
  const int aliases = kMaxYamlAliases - 100;
  const std::string yaml = AliasBomb(2500, aliases);
  const Timed timed = TimedParse(yaml);
  ASSERT_FALSE(timed.result.ok());
  ASSERT_EQ(timed.result.errors.size(), 1u) << FormatErrors("job.yaml", timed.result.errors);
  const bert::v1::SpecError& error = timed.result.errors[0];
  EXPECT_THAT(error.message(), HasSubstr(absl::StrCat("more than ", kMaxYamlNodes, " YAML nodes")));
  // The budget runs out inside the aliased list (lines 4, 5, ...).
  EXPECT_GE(error.line(), 4);
  EXPECT_LT(timed.seconds, 2.0);
}

TEST(YamlLimitsTest, ANormalSpecWithAFewAliasesStillParses) {
  const std::string yaml =
      "name: t\n"
      "labels: &l {team: nlp}\n"
      "corpus:\n"
      "  sources:\n"
      "    - &s {paths: [corpus.txt], format: text}\n"
      "    - *s\n"
      "    - *s\n";
  const Timed timed = TimedParse(yaml);
  ASSERT_TRUE(timed.result.ok()) << FormatErrors("job.yaml", timed.result.errors);
  ASSERT_EQ(timed.result.spec.corpus().sources_size(), 3);
  EXPECT_EQ(timed.result.spec.corpus().sources(2).paths(0), TestData() + "/corpus.txt");
}

TEST(YamlLimitsTest, CheckYamlAliasesCountsEveryUse) {
  FieldLocations locations;
  SpecErrorList errors(&locations);
  std::string yaml = "a: &a 1\nb: [";
  for (int i = 0; i < kMaxYamlAliases; ++i) yaml += i == 0 ? "*a" : ", *a";
  EXPECT_TRUE(CheckYamlAliases(yaml + "]\n", &errors));
  EXPECT_FALSE(CheckYamlAliases(yaml + ", *a]\n", &errors));
  const auto taken = errors.Take();
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].line(), 2);
}

}  // namespace
}  // namespace bert::spec
