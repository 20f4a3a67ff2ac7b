// The device-dependent engine checks on the CPU (tests/engine/device_checks.h;
// engine_device_check runs the same on CUDA), and the MFU peak table.
#include <gtest/gtest.h>

#include "engine/device_peak.h"
#include "tests/engine/device_checks.h"
#include "tests/engine/test_corpus.h"

namespace bert::engine {
namespace {

TEST(DeviceChecksTest, CollectivesTakeOnlyTheWorldsDevice) {
  EXPECT_EQ(testing::CheckCollectivesTakeOnlyTheWorldsDevice(torch::kCPU), "");
}

TEST(DeviceChecksTest, AttentionMatchesReference) {
  EXPECT_EQ(testing::CheckAttentionMatchesReference(torch::kCPU), "");
}

TEST(DeviceChecksTest, CheckpointsKeepDeviceRngStates) {
  EXPECT_EQ(testing::CheckCheckpointKeepsDeviceRngStates(torch::kCPU, testing::MakeTempDir("device-rng")), "");
}

TEST(DeviceChecksTest, TrainingResumesExactly) {
  EXPECT_EQ(testing::CheckTrainingResumesExactly(torch::kCPU, testing::MakeTempDir("device-train")), "");
}

TEST(DevicePeakTest, TableFindsCommonGpusByTheirCudaNames) {
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(0, "NVIDIA H200", true), 989.4e12);
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(0, "NVIDIA H100 80GB HBM3", true), 989.4e12);
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(0, "NVIDIA H100 PCIe", true), 756e12);  // before "H100"
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(0, "NVIDIA H200 NVL", true), 835.5e12);
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(0, "NVIDIA A100-SXM4-80GB", true), 312e12);
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(0, "NVIDIA A100 80GB PCIe", true), 312e12);
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(0, "nvidia a100-pcie-40gb", false), 19.5e12);  // fp32, any case
}

TEST(DevicePeakTest, UnknownDevicesHaveNoPeak) {
  EXPECT_EQ(FindDevicePeak("NVIDIA GeForce RTX 4090"), nullptr);
  EXPECT_EQ(FindDevicePeak(""), nullptr);
  EXPECT_EQ(ResolvePeakFlops(0, "Tesla T4", true), 0.0);
}

TEST(DevicePeakTest, TheConfiguredPeakOverridesTheTable) {
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(500e12, "NVIDIA H200", true), 500e12);
  EXPECT_DOUBLE_EQ(ResolvePeakFlops(1e12, "Tesla T4", false), 1e12);
}

TEST(DevicePeakTest, NoDriverNoName) {
  // This machine has no GPU (or one): either way the call answers without throwing.
  const std::string name = CudaDeviceName(0);
  EXPECT_EQ(CudaDeviceName(-1), "");
  EXPECT_EQ(CudaDeviceName(1 << 20), "");
  (void)name;
}

}  // namespace
}  // namespace bert::engine
