// formats::DatasetManifest: a round trip, and untrusted manifests refused with
// the file and the field named (format, version, sizes that overflow, ...).
#include "formats/dataset_manifest.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace bert::formats {
namespace {

constexpr char kWhere[] = "/data/ds/manifest.json";

DatasetManifest Sample() {
  DatasetManifest m;
  m.dtype = "uint16";
  m.seq_len = 128;
  m.vocab_size = 30522;
  m.tokenizer_sha256 = "ab12";
  m.special_token_ids = {{"pad", 0}, {"unk", 100}, {"cls", 101}, {"sep", 102}, {"mask", 103}};
  m.shuffle_seed = 34;
  m.shuffle = "numpy-pcg64-permutation";
  m.split_long_documents = true;
  m.splits["train"] = {7, {{"train-00000.bin", 4, "aa"}, {"train-00001.bin", 3, "bb"}}};
  m.splits["validation"] = {1, {{"validation-00000.bin", 1, ""}}};
  m.stats = {10, 1000, 20, 5};
  return m;
}

// Sample() as JSON, with `edit` applied.
template <typename Edit>
Result<DatasetManifest> Edited(Edit edit) {
  nlohmann::json j = Sample().ToJson();
  edit(j);
  return DatasetManifest::Parse(j.dump(), kWhere);
}

// The error of `r`, which must have failed with `code` and name the file and `field`.
void ExpectRefused(const Result<DatasetManifest>& r, ErrorCode code, const std::string& field) {
  ASSERT_FALSE(r.ok()) << "accepted; expected an error naming " << field;
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_EQ(r.error().message.rfind(kWhere, 0), 0u) << r.error().message;
  EXPECT_NE(r.error().message.find(field), std::string::npos) << r.error().message;
}

TEST(DatasetManifestTest, RoundTripsThroughJsonText) {
  const DatasetManifest m = Sample();
  Result<DatasetManifest> back = DatasetManifest::Parse(m.ToJson().dump(2), kWhere);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->ToJson(), m.ToJson());
  EXPECT_EQ(back->dtype, "uint16");
  EXPECT_EQ(back->seq_len, 128u);
  EXPECT_EQ(back->block_bytes(), 256u);
  EXPECT_EQ(back->special_token_ids.at("mask"), 103u);
  EXPECT_TRUE(back->split_long_documents);
  ASSERT_EQ(back->splits.at("train").shards.size(), 2u);
  EXPECT_EQ(back->splits.at("train").shards[1].file, "train-00001.bin");
  EXPECT_EQ(back->splits.at("train").shards[1].sha256, "bb");
  EXPECT_EQ(back->stats.tokens_dropped_remainder, 5u);
}

TEST(DatasetManifestTest, RefusesAnotherFormatOrVersion) {
  ExpectRefused(Edited([](auto& j) { j["format"] = "bert-prepared-corpus"; }),
                ErrorCode::kUnsupported, "format");
  ExpectRefused(Edited([](auto& j) { j["format_version"] = 2; }), ErrorCode::kUnsupported,
                "format_version: 2");
  ExpectRefused(Edited([](auto& j) { j.erase("format_version"); }), ErrorCode::kUnsupported,
                "format_version");
  Result<DatasetManifest> garbage = DatasetManifest::Parse("{\"format\":", kWhere);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::kMalformed);
}

TEST(DatasetManifestTest, RefusesBadScalarsNamingTheField) {
  ExpectRefused(Edited([](auto& j) { j["dtype"] = "int8"; }), ErrorCode::kMalformed, "dtype");
  ExpectRefused(Edited([](auto& j) { j["seq_len"] = 1; }), ErrorCode::kMalformed, "seq_len");
  ExpectRefused(Edited([](auto& j) { j["seq_len"] = -5; }), ErrorCode::kMalformed, "seq_len");
  ExpectRefused(Edited([](auto& j) { j["seq_len"] = uint64_t{1} << 40; }), ErrorCode::kMalformed,
                "seq_len");
  ExpectRefused(Edited([](auto& j) { j["vocab_size"] = 70000; }), ErrorCode::kMalformed,
                "vocab_size");  // does not fit uint16
  ExpectRefused(Edited([](auto& j) { j["special_token_ids"]["mask"] = 30522; }),
                ErrorCode::kMalformed, "special_token_ids.mask");
  ExpectRefused(Edited([](auto& j) { j["splits"]["train"]["shards"][1]["file"] = ".."; }),
                ErrorCode::kMalformed, "splits.train.shards[1].file");
  ExpectRefused(Edited([](auto& j) { j["splits"]["train"]["shards"][0]["file"] = "../x.bin"; }),
                ErrorCode::kMalformed, "splits.train.shards[0].file");
  ExpectRefused(Edited([](auto& j) { j["splits"]["train"]["blocks"] = 8; }),
                ErrorCode::kMalformed, "splits.train.blocks");
  ExpectRefused(Edited([](auto& j) { j["stats"]["tokens"] = "many"; }), ErrorCode::kMalformed,
                "stats.tokens");
}

TEST(DatasetManifestTest, RefusesAShardWhoseByteSizeOverflows) {
  // 2^62 blocks of 128 uint16 tokens (256 bytes each) is 2^70 bytes: it must
  // not wrap around to a small size that some file could match.
  const uint64_t blocks = uint64_t{1} << 62;
  ExpectRefused(Edited([&](auto& j) {
                  j["splits"]["validation"]["blocks"] = blocks;
                  j["splits"]["validation"]["shards"][0]["blocks"] = blocks;
                }),
                ErrorCode::kMalformed, "splits.validation.shards[0].blocks");
  // The largest number JSON carries here, 2^64 - 1, too.
  ExpectRefused(Edited([](auto& j) {
                  j["splits"]["train"]["shards"][0]["blocks"] = std::numeric_limits<uint64_t>::max();
                }),
                ErrorCode::kMalformed, "splits.train.shards[0].blocks");
}

TEST(DatasetManifestTest, RefusesASplitWhoseBlockCountOverflows) {
  // Each shard alone fits a file ((2^55 - 1) blocks x 256 bytes = 2^63 - 256), but
  // their sum overflows the block index.
  const uint64_t each = (uint64_t{1} << 55) - 1;
  ExpectRefused(Edited([&](auto& j) {
                  nlohmann::json shards = nlohmann::json::array();
                  for (int i = 0; i < 300; ++i) {
                    shards.push_back({{"file", "s" + std::to_string(i)}, {"blocks", each}});
                  }
                  j["splits"]["train"]["shards"] = shards;
                  j["splits"]["train"]["blocks"] = 0;
                }),
                ErrorCode::kMalformed, "overflows");
}

}  // namespace
}  // namespace bert::formats
