// The block shuffle of Hugging Face `datasets`, bit for bit.
//
// `Dataset.shuffle(seed=34)` takes `np.random.default_rng(34).permutation(n)`:
// NumPy's SeedSequence(34) seeds a PCG64 (XSL-RR 128/64), and permutation()
// is a Fisher-Yates shuffle of 0..n-1 drawing each index with NumPy's masked
// rejection sampler (`random_interval`: 32-bit draws, halves of one 64-bit
// output, while the bound fits in 32 bits). This reimplements those three
// pieces, so "seed 34" here orders blocks exactly as the article's dataset does
// (checked against NumPy 1.24 in tests/data/numpy_permutation_test.cc).
#pragma once

#include <cstdint>
#include <vector>

namespace bert::data {

// np.random.default_rng(seed).permutation(n). Memory: 8 bytes per element.
std::vector<uint64_t> NumpyPermutation(uint64_t n, uint64_t seed);

}  // namespace bert::data
