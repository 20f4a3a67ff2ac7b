#include "data/numpy_permutation.h"

#include <cstddef>
#include <utility>

namespace bert::data {
namespace {

using u128 = unsigned __int128;

// numpy/random/bit_generator.pyx: SeedSequence with pool_size 4.
constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;
constexpr int kXShift = 16;
constexpr int kPoolSize = 4;

uint32_t HashMix(uint32_t value, uint32_t* hash_const) {
  value ^= *hash_const;
  *hash_const *= kMultA;
  value *= *hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t Mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

// SeedSequence(seed).generate_state(4, np.uint64).
void SeedSequenceState(uint64_t seed, uint64_t out[4]) {
  std::vector<uint32_t> entropy;
  if (seed == 0) entropy.push_back(0);
  for (uint64_t s = seed; s > 0; s >>= 32) entropy.push_back(static_cast<uint32_t>(s));
  uint32_t pool[kPoolSize];
  uint32_t hash_const = kInitA;
  for (int i = 0; i < kPoolSize; ++i) {
    pool[i] = HashMix(i < static_cast<int>(entropy.size()) ? entropy[i] : 0, &hash_const);
  }
  for (int src = 0; src < kPoolSize; ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      if (src != dst) pool[dst] = Mix(pool[dst], HashMix(pool[src], &hash_const));
    }
  }
  for (size_t src = kPoolSize; src < entropy.size(); ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      pool[dst] = Mix(pool[dst], HashMix(entropy[src], &hash_const));
    }
  }
  uint32_t words[8];
  uint32_t hash_b = kInitB;
  for (int i = 0; i < 8; ++i) {
    uint32_t v = pool[i % kPoolSize];
    v ^= hash_b;
    hash_b *= kMultB;
    v *= hash_b;
    v ^= v >> kXShift;
    words[i] = v;
  }
  for (int i = 0; i < 4; ++i)
    out[i] = words[2 * i] | (static_cast<uint64_t>(words[2 * i + 1]) << 32);
}

// NumPy's PCG64 (pcg_setseq_128_xsl_rr_64) with its buffered 32-bit draws.
class Pcg64 {
 public:
  explicit Pcg64(uint64_t seed) {
    uint64_t s[4];
    SeedSequenceState(seed, s);
    const u128 initstate = (static_cast<u128>(s[0]) << 64) | s[1];
    const u128 initseq = (static_cast<u128>(s[2]) << 64) | s[3];
    state_ = 0;
    inc_ = (initseq << 1) | 1;
    Step();
    state_ += initstate;
    Step();
  }

  uint64_t Next64() {
    Step();
    const uint64_t x = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
    const unsigned rot = static_cast<unsigned>(state_ >> 122);
    return (x >> rot) | (x << ((64 - rot) & 63));
  }

  uint32_t Next32() {
    if (has_uint32_) {
      has_uint32_ = false;
      return uinteger_;
    }
    uint64_t next = Next64();
    has_uint32_ = true;
    uinteger_ = static_cast<uint32_t>(next >> 32);
    return static_cast<uint32_t>(next);
  }

  // numpy/random/src/distributions/distributions.c: random_interval.
  uint64_t Interval(uint64_t max) {
    if (max == 0) return 0;
    uint64_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    uint64_t value;
    if (max <= 0xffffffffULL) {
      while ((value = (Next32() & mask)) > max) {
      }
    } else {
      while ((value = (Next64() & mask)) > max) {
      }
    }
    return value;
  }

 private:
  void Step() { state_ = state_ * kMultiplier + inc_; }

  static constexpr u128 kMultiplier =
      (static_cast<u128>(0x2360ED051FC65DA4ULL) << 64) | 0x4385DF649FCCF645ULL;
  u128 state_;
  u128 inc_;
  bool has_uint32_ = false;
  uint32_t uinteger_ = 0;
};

}  // namespace

std::vector<uint64_t> NumpyPermutation(uint64_t n, uint64_t seed) {
  std::vector<uint64_t> perm(n);
  for (uint64_t i = 0; i < n; ++i) perm[i] = i;
  Pcg64 rng(seed);
  for (uint64_t i = n; i-- > 1;) std::swap(perm[i], perm[rng.Interval(i)]);
  return perm;
}

}  // namespace bert::data
