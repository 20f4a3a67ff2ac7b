// The shuffle against NumPy's own output (testdata/numpy_permutation.txt,
// written by np.random.default_rng(seed).permutation(n) with NumPy 1.24.2).
#include "data/numpy_permutation.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/data/data_test_util.h"

namespace bert::data {
namespace {

TEST(NumpyPermutationTest, MatchesNumpyDefaultRng) {
  std::ifstream in(testing::TestdataPath("numpy_permutation.txt"));
  ASSERT_TRUE(in.good());
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    uint64_t seed, n;
    fields >> seed >> n;
    std::vector<uint64_t> expected;
    for (uint64_t v; fields >> v;) expected.push_back(v);
    std::vector<uint64_t> perm = NumpyPermutation(n, seed);
    ASSERT_EQ(perm.size(), n);
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(perm[i], expected[i]) << "seed " << seed << " n " << n << " at " << i;
    }
    ++cases;
  }
  EXPECT_EQ(cases, 6);
}

TEST(NumpyPermutationTest, IsAPermutation) {
  std::vector<uint64_t> perm = NumpyPermutation(100000, 34);
  std::vector<bool> seen(perm.size());
  for (uint64_t v : perm) {
    ASSERT_LT(v, perm.size());
    ASSERT_FALSE(seen[v]);
    seen[v] = true;
  }
  EXPECT_TRUE(NumpyPermutation(0, 34).empty());
  EXPECT_EQ(NumpyPermutation(1, 34), std::vector<uint64_t>{0});
}

}  // namespace
}  // namespace bert::data
