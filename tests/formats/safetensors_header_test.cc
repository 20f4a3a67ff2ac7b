// formats::ParseSafetensorsHeader: a good header, and untrusted headers refused
// with the file and the field named, before any size is trusted: a header past
// the file, offsets that overflow or fall outside it, shapes whose byte size
// overflows or disagrees with the offsets.
#include "formats/safetensors_header.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"

namespace bert::formats {
namespace {

constexpr char kWhere[] = "/ckpt/model.safetensors";

// The file: the 8-byte length, `header` as JSON, then `data_bytes` zero bytes.
std::string File(const nlohmann::json& header, size_t data_bytes) {
  const std::string json = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t{json.size()} >> (8 * i)) & 0xff);
  return out + json + std::string(data_bytes, '\0');
}

nlohmann::json Tensor(const std::string& dtype, nlohmann::json shape, uint64_t begin,
                      uint64_t end) {
  return {{"dtype", dtype}, {"shape", std::move(shape)}, {"data_offsets", {begin, end}}};
}

// The error of `r`, which must have failed with `code` and name the file and `field`.
template <typename T>
std::string ErrorOf(const Result<T>& r, ErrorCode code, const std::string& field) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(kWhere), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(field), std::string::npos) << r.error().message;
  return r.error().message;
}

TEST(SafetensorsHeaderTest, ParsesTensorsWithAbsoluteOffsets) {
  const nlohmann::json header = {{"__metadata__", {{"format", "pt"}}},
                                 {"a", Tensor("F32", {2, 3}, 0, 24)},
                                 {"b", Tensor("I64", nlohmann::json::array(), 24, 32)}};
  const std::string file = File(header, 32);
  auto r = ParseSafetensorsHeader(file, kWhere);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tensors.size(), 2u);
  const uint64_t start = file.size() - 32;
  EXPECT_EQ(r->data_start, start);
  EXPECT_EQ(r->tensors[0].name, "a");
  EXPECT_EQ(r->tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r->tensors[0].elements, 6u);
  EXPECT_EQ(r->tensors[0].begin, start);
  EXPECT_EQ(r->tensors[0].end, start + 24);
  EXPECT_EQ(r->tensors[1].elements, 1u);  // a scalar
  EXPECT_EQ(r->tensors[1].end, file.size());
}

TEST(SafetensorsHeaderTest, RefusesAHeaderLengthPastTheFileOrOverTheLimit) {
  std::string file = File({{"a", Tensor("U8", {1}, 0, 1)}}, 1);
  file.resize(file.size() - 8);  // cuts into the header
  ErrorOf(ParseSafetensorsHeader(file, kWhere), ErrorCode::kCorrupt, "header length");
  std::string huge(16, '\0');
  for (int i = 0; i < 8; ++i) huge[i] = '\xff';  // 2^64 - 1: 8 + n would overflow
  ErrorOf(ParseSafetensorsHeader(huge, kWhere), ErrorCode::kMalformed, "header length");
  ErrorOf(ParseSafetensorsHeader("1234", kWhere), ErrorCode::kMalformed, "8-byte");
}

TEST(SafetensorsHeaderTest, RefusesOffsetsThatWrapAroundOrLeaveTheFile) {
  // end - begin matches the shape, but begin + the data start overflows uint64.
  const uint64_t max = UINT64_MAX;
  ErrorOf(ParseSafetensorsHeader(File({{"w", Tensor("U8", {4}, max - 4, max)}}, 8), kWhere),
          ErrorCode::kCorrupt, "tensor 'w'.data_offsets");
  ErrorOf(ParseSafetensorsHeader(File({{"w", Tensor("F32", {4}, 0, 16)}}, 12), kWhere),
          ErrorCode::kCorrupt, "tensor 'w'.data_offsets");
  ErrorOf(ParseSafetensorsHeader(File({{"w", Tensor("F32", {4}, 16, 0)}}, 16), kWhere),
          ErrorCode::kMalformed, "tensor 'w'.data_offsets");
}

TEST(SafetensorsHeaderTest, RefusesShapesWhoseSizeOverflowsOrDisagrees) {
  // 2^62 x 8 bytes overflows; a product of dimensions overflowing too.
  const uint64_t big = uint64_t{1} << 62;
  ErrorOf(ParseSafetensorsHeader(File({{"w", Tensor("F64", {big}, 0, 0)}}, 0), kWhere),
          ErrorCode::kMalformed, "tensor 'w'.shape");
  ErrorOf(ParseSafetensorsHeader(File({{"w", Tensor("U8", {big, big}, 0, 0)}}, 0), kWhere),
          ErrorCode::kMalformed, "tensor 'w'.shape");
  ErrorOf(ParseSafetensorsHeader(File({{"w", Tensor("U8", {-1}, 0, 0)}}, 0), kWhere),
          ErrorCode::kMalformed, "tensor 'w'.shape");
  ErrorOf(ParseSafetensorsHeader(File({{"w", Tensor("F32", {3}, 0, 8)}}, 8), kWhere),
          ErrorCode::kMalformed, "tensor 'w'.data_offsets");
}

TEST(SafetensorsHeaderTest, RefusesMissingFieldsAndUnknownDtypes) {
  ErrorOf(
      ParseSafetensorsHeader(File({{"w", {{"shape", {1}}, {"data_offsets", {0, 1}}}}}, 1), kWhere),
      ErrorCode::kMalformed, "tensor 'w'.dtype");
  ErrorOf(
      ParseSafetensorsHeader(File({{"w", {{"dtype", "U8"}, {"data_offsets", {0, 1}}}}}, 1), kWhere),
      ErrorCode::kMalformed, "tensor 'w'.shape");
  ErrorOf(ParseSafetensorsHeader(File({{"w", {{"dtype", "U8"}, {"shape", {1}}}}}, 1), kWhere),
          ErrorCode::kMalformed, "tensor 'w'.data_offsets");
  ErrorOf(ParseSafetensorsHeader(File({{"w", Tensor("F8_E4M3", {1}, 0, 1)}}, 1), kWhere),
          ErrorCode::kUnsupported, "tensor 'w'.dtype");
  ErrorOf(ParseSafetensorsHeader(File({{"w", 3}}, 0), kWhere), ErrorCode::kMalformed, "tensor 'w'");
  ErrorOf(ParseSafetensorsHeader(File(nlohmann::json::array(), 0), kWhere), ErrorCode::kMalformed,
          "header");
}

}  // namespace
}  // namespace bert::formats
