// precision: auto (engine/precision.h): the CPU features read from
// /proc/cpuinfo text, and the choice they lead to on each kind of device.
#include "engine/precision.h"

#include <gtest/gtest.h>

#include <iostream>

namespace bert::engine {
namespace {

// Two processors of an AVX2-only machine, as /proc/cpuinfo lists them.
constexpr char kAvx2CpuInfo[] =
    "processor\t: 0\n"
    "vendor_id\t: AuthenticAMD\n"
    "model name\t: AMD EPYC 7B12\n"
    "flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2\n"
    "bugs\t\t: sysret_ss_attrs\n"
    "\n"
    "processor\t: 1\n"
    "model name\t: AMD EPYC 7B12\n"
    "flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2\n";

// A Sapphire Rapids guest: AVX-512 with bf16 dot products, and AMX.
constexpr char kAmxCpuInfo[] =
    "processor\t: 0\n"
    "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    "flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n";

// AVX-512 with bf16 dot products but no AMX exposed (as on many cloud guests).
constexpr char kAvx512Bf16CpuInfo[] =
    "processor\t: 0\n"
    "model name\t: Intel(R) Xeon(R) Processor\n"
    "flags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 avx512_fp16\n";

// AVX-512 without bf16 (Skylake/Cascade Lake): avx512_vnni is not bf16.
constexpr char kAvx512NoBf16CpuInfo[] =
    "model name\t: Intel(R) Xeon(R) Gold 6230\n"
    "flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n"
    "vmx flags\t: vnmi preemption_timer\n";

TEST(CpuFeaturesTest, ReadsTheFirstFlagsLineAndModelName) {
  const CpuFeatures f = ParseCpuInfo(kAvx2CpuInfo);
  EXPECT_EQ(f.model_name, "AMD EPYC 7B12");
  EXPECT_TRUE(f.avx2);
  EXPECT_FALSE(f.avx512f);
  EXPECT_FALSE(f.avx512_bf16);
  EXPECT_FALSE(f.amx_bf16);
  EXPECT_FALSE(f.NativeBf16());
  EXPECT_EQ(f.Summary(), "AMD EPYC 7B12; avx2, no avx512f avx512_bf16 amx_bf16");

  const CpuFeatures amx = ParseCpuInfo(kAmxCpuInfo);
  EXPECT_TRUE(amx.avx512f && amx.avx512_bf16 && amx.amx_bf16 && amx.NativeBf16());
  EXPECT_EQ(amx.Summary(), "Intel(R) Xeon(R) Platinum 8480+; avx2 avx512f avx512_bf16 amx_bf16");
}

TEST(CpuFeaturesTest, MatchesWholeFlagsOnly) {
  // "avx512_bf16x" or "xamx_bf16" are not the flags; "vmx flags" is not "flags".
  const CpuFeatures f = ParseCpuInfo(
      "vmx flags\t: avx512_bf16 amx_bf16\n"
      "flags\t\t: avx512_bf16x xamx_bf16 avx2\n");
  EXPECT_TRUE(f.avx2);
  EXPECT_FALSE(f.avx512_bf16);
  EXPECT_FALSE(f.amx_bf16);
  const CpuFeatures g = ParseCpuInfo(kAvx512NoBf16CpuInfo);
  EXPECT_TRUE(g.avx512f);
  EXPECT_FALSE(g.NativeBf16());
}

TEST(CpuFeaturesTest, TextWithoutFlagsHasNoFeatures) {
  for (const char* text : {"", "processor\t: 0\n", "garbage without newline", "flags"}) {
    const CpuFeatures f = ParseCpuInfo(text);
    EXPECT_FALSE(f.avx2 || f.avx512f || f.avx512_bf16 || f.amx_bf16) << text;
    EXPECT_EQ(f.model_name, "") << text;
  }
  EXPECT_EQ(CpuFeatures{}.Summary(), "cpu; none of avx2 avx512f avx512_bf16 amx_bf16");
  // A line with CRLF ending (a copied file) still reads.
  EXPECT_TRUE(ParseCpuInfo("flags\t: avx2 avx512_bf16\r\n").avx512_bf16);
}

TEST(ChoosePrecisionTest, CpuBf16OnlyWithNativeBf16Products) {
  const PrecisionChoice avx2 = ChoosePrecision("auto", "cpu", ParseCpuInfo(kAvx2CpuInfo), 0);
  EXPECT_EQ(avx2.precision, "fp32");
  EXPECT_EQ(avx2.reason,
            "precision auto → fp32 (cpu has neither avx512_bf16 nor amx_bf16: bf16 would be "
            "emulated, slower than fp32)");

  const PrecisionChoice no_bf16 = ChoosePrecision("auto", "cpu", ParseCpuInfo(kAvx512NoBf16CpuInfo), 0);
  EXPECT_EQ(no_bf16.precision, "fp32");

  const PrecisionChoice avx512 = ChoosePrecision("auto", "cpu", ParseCpuInfo(kAvx512Bf16CpuInfo), 0);
  EXPECT_EQ(avx512.precision, "bf16");
  EXPECT_EQ(avx512.reason, "precision auto → bf16 (cpu has avx512_bf16)");

  const PrecisionChoice amx = ChoosePrecision("auto", "cpu", ParseCpuInfo(kAmxCpuInfo), 0);
  EXPECT_EQ(amx.precision, "bf16");
  EXPECT_EQ(amx.reason, "precision auto → bf16 (cpu has amx_bf16)");
}

TEST(ChoosePrecisionTest, CudaBf16FromComputeCapabilityEight) {
  const CpuFeatures avx2 = ParseCpuInfo(kAvx2CpuInfo);  // the host's CPU does not matter
  EXPECT_EQ(ChoosePrecision("auto", "cuda", avx2, 9).precision, "bf16");
  EXPECT_EQ(ChoosePrecision("auto", "cuda", avx2, 8).precision, "bf16");
  EXPECT_EQ(ChoosePrecision("auto", "cuda", avx2, 8).reason,
            "precision auto → bf16 (cuda compute capability 8.x has bf16 tensor cores)");
  const PrecisionChoice volta = ChoosePrecision("auto", "cuda", ParseCpuInfo(kAmxCpuInfo), 7);
  EXPECT_EQ(volta.precision, "fp32");
  EXPECT_EQ(volta.reason,
            "precision auto → fp32 (cuda compute capability 7.x has no bf16 tensor cores (8.0 and "
            "above do))");
  EXPECT_EQ(ChoosePrecision("auto", "cuda", avx2, 0).precision, "fp32");  // unknown
}

TEST(ChoosePrecisionTest, HpuIsBf16) {
  EXPECT_EQ(ChoosePrecision("auto", "hpu", CpuFeatures{}, 0).precision, "bf16");
}

TEST(ChoosePrecisionTest, ExplicitPrecisionIsKeptWithoutAReason) {
  const CpuFeatures avx2 = ParseCpuInfo(kAvx2CpuInfo);
  EXPECT_EQ(ChoosePrecision("bf16", "cpu", avx2, 0).precision, "bf16");  // emulated, but asked for
  EXPECT_EQ(ChoosePrecision("bf16", "cpu", avx2, 0).reason, "");
  EXPECT_EQ(ChoosePrecision("fp32", "cuda", avx2, 9).precision, "fp32");
  EXPECT_EQ(ChoosePrecision("fp16", "cpu", avx2, 0).precision, "fp16");  // validation refuses it
}

TEST(ChoosePrecisionTest, ThisMachineDecidesConsistently) {
  // Whatever this machine is, auto on its CPU follows its flags.
  const CpuFeatures here = ReadCpuFeatures();
  EXPECT_EQ(ChoosePrecision("auto", "cpu", here, 0).precision, here.NativeBf16() ? "bf16" : "fp32");
  std::cout << "this machine: " << here.Summary() << "\n";
}

}  // namespace
}  // namespace bert::engine
