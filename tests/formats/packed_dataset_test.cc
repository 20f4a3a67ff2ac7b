// formats::PackedDataset: blocks across shards in both dtypes, and damaged
// datasets refused with the file named (sizes, checksums, missing files).
#include "formats/packed_dataset.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "formats/sha256.h"
#include "tests/testing/temp_dir.h"

namespace bert::formats {
namespace {

constexpr uint32_t kSeqLen = 4;

// Token t of global block b of a split: distinct, and above 65535 for uint32.
uint32_t Token(uint64_t block, uint32_t t, bool wide) {
  return static_cast<uint32_t>(block * 10 + t + 5) + (wide ? 70000 : 0);
}

class PackedDatasetTest : public ::testing::Test {
 protected:
  // Writes a dataset: train = shards of 3, 0 and 2 blocks; validation = 1 block.
  void Write(bool wide) {
    DatasetManifest m;
    m.dtype = wide ? "uint32" : "uint16";
    m.seq_len = kSeqLen;
    m.vocab_size = wide ? 80000 : 1000;
    m.special_token_ids = {{"pad", 0}, {"unk", 1}, {"cls", 2}, {"sep", 3}, {"mask", 4}};
    uint64_t first = 0;
    for (uint64_t blocks : {3, 0, 2}) {
      m.splits["train"].shards.push_back(
          WriteShard("train-0000" + std::to_string(m.splits["train"].shards.size()) + ".bin",
                     first, blocks, wide));
      m.splits["train"].blocks += blocks;
      first += blocks;
    }
    m.splits["validation"] = {1, {WriteShard("validation-00000.bin", 0, 1, wide)}};
    std::ofstream(dir_.File("manifest.json")) << m.ToJson().dump(2);
  }

  DatasetShard WriteShard(const std::string& file, uint64_t first, uint64_t blocks, bool wide) {
    std::string bytes;
    for (uint64_t b = first; b < first + blocks; ++b) {
      for (uint32_t t = 0; t < kSeqLen; ++t) {
        const uint32_t v = Token(b, t, wide);
        if (wide) {
          bytes.append(reinterpret_cast<const char*>(&v), 4);
        } else {
          const uint16_t narrow = static_cast<uint16_t>(v);
          bytes.append(reinterpret_cast<const char*>(&narrow), 2);
        }
      }
    }
    std::ofstream(dir_.File(file), std::ios::binary) << bytes;
    return {file, blocks, Sha256Hex(bytes)};
  }

  std::string dir() const { return dir_.path().string(); }

  testing::TempDir dir_{"formats_ds_"};
};

TEST_F(PackedDatasetTest, ReadsEveryBlockAcrossShardsInBothDtypes) {
  for (bool wide : {false, true}) {
    Write(wide);
    Result<PackedDataset> ds = PackedDataset::Open(dir(), /*verify=*/true);
    ASSERT_TRUE(ds.ok()) << ds.error().message;
    EXPECT_EQ(ds->manifest().dtype, wide ? "uint32" : "uint16");
    EXPECT_EQ(ds->num_blocks("train"), 5u);
    EXPECT_EQ(ds->num_blocks("validation"), 1u);
    EXPECT_EQ(ds->num_blocks("test"), 0u);
    const PackedSplit* train = ds->FindSplit("train");
    ASSERT_NE(train, nullptr);
    EXPECT_EQ(train->seq_len(), kSeqLen);
    for (uint64_t b = 0; b < 5; ++b) {
      Result<std::vector<uint32_t>> ids = ds->Block("train", b);
      ASSERT_TRUE(ids.ok()) << ids.error().message;
      std::vector<int64_t> wide_ids(kSeqLen);
      ASSERT_TRUE(train->ReadBlock(b, wide_ids).ok());
      for (uint32_t t = 0; t < kSeqLen; ++t) {
        ASSERT_EQ((*ids)[t], Token(b, t, wide)) << "block " << b;
        ASSERT_EQ(wide_ids[t], Token(b, t, wide)) << "block " << b;
      }
    }
    // Copies share the mappings and outlive the original.
    const PackedSplit copy = *train;
    ds = Error{ErrorCode::kNotFound, "gone"};
    std::vector<uint32_t> last(kSeqLen);
    ASSERT_TRUE(copy.ReadBlock(4, last).ok());
    EXPECT_EQ(last[0], Token(4, 0, wide));
  }
}

TEST_F(PackedDatasetTest, BadArgumentsAreErrorsNotCrashes) {
  Write(false);
  Result<PackedDataset> ds = PackedDataset::Open(dir());
  ASSERT_TRUE(ds.ok()) << ds.error().message;
  EXPECT_EQ(ds->Block("train", 5).error().code, ErrorCode::kOutOfRange);
  EXPECT_EQ(ds->Block("train", ~uint64_t{0}).error().code, ErrorCode::kOutOfRange);
  EXPECT_EQ(ds->Block("test", 0).error().code, ErrorCode::kNotFound);
  std::vector<uint32_t> small(kSeqLen - 1);
  EXPECT_EQ(ds->FindSplit("train")->ReadBlock(0, small).error().code,
            ErrorCode::kInvalidArgument);
}

TEST_F(PackedDatasetTest, RefusesAShardOfTheWrongSizeNamingTheFileAndField) {
  Write(false);
  std::filesystem::resize_file(dir_.File("train-00002.bin"), 2 * kSeqLen * 2 - 3);
  Result<PackedDataset> ds = PackedDataset::Open(dir());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(ds.error().message.rfind(dir_.File("train-00002.bin"), 0), 0u) << ds.error().message;
  EXPECT_NE(ds.error().message.find("splits.train.shards[2].blocks"), std::string::npos)
      << ds.error().message;
  EXPECT_NE(ds.error().message.find("truncated"), std::string::npos) << ds.error().message;
  // Longer than the manifest says is as wrong as shorter.
  std::filesystem::resize_file(dir_.File("train-00002.bin"), 2 * kSeqLen * 2 + 2);
  EXPECT_EQ(PackedDataset::Open(dir()).error().code, ErrorCode::kCorrupt);
}

TEST_F(PackedDatasetTest, RefusesAnOverflowingBlockCountBeforeMappingAnything) {
  Write(false);
  std::string text;
  {
    std::ifstream in(dir_.File("manifest.json"));
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  nlohmann::json j = nlohmann::json::parse(text);
  // 2^62 blocks x 8 bytes wraps to 0 in 64 bits: an empty file would "match".
  j["splits"]["validation"]["blocks"] = uint64_t{1} << 62;
  j["splits"]["validation"]["shards"][0]["blocks"] = uint64_t{1} << 62;
  std::ofstream(dir_.File("validation-00000.bin"), std::ios::trunc);
  std::ofstream(dir_.File("manifest.json"), std::ios::trunc) << j.dump();
  Result<PackedDataset> ds = PackedDataset::Open(dir());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.error().code, ErrorCode::kMalformed);
  EXPECT_NE(ds.error().message.find("manifest.json: splits.validation.shards[0].blocks"),
            std::string::npos)
      << ds.error().message;
}

TEST_F(PackedDatasetTest, VerifyCatchesACorruptShardThatSizesDoNot) {
  Write(false);
  {
    std::fstream f(dir_.File("train-00000.bin"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5);
    f.put('\x7f');
  }
  EXPECT_TRUE(PackedDataset::Open(dir(), false).ok());
  Result<PackedDataset> ds = PackedDataset::Open(dir(), true);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(ds.error().message.find("train-00000.bin"), std::string::npos) << ds.error().message;
  EXPECT_NE(ds.error().message.find("splits.train.shards[0].sha256"), std::string::npos)
      << ds.error().message;
}

TEST_F(PackedDatasetTest, MissingManifestOrShardIsNotFoundNamingIt) {
  Write(false);
  std::filesystem::remove(dir_.File("validation-00000.bin"));
  Result<PackedDataset> ds = PackedDataset::Open(dir());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.error().code, ErrorCode::kNotFound);
  EXPECT_NE(ds.error().message.find("validation-00000.bin"), std::string::npos);
  std::filesystem::remove(dir_.File("manifest.json"));
  ds = PackedDataset::Open(dir());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.error().code, ErrorCode::kNotFound);
  EXPECT_NE(ds.error().message.find("manifest.json"), std::string::npos);
}

// A FIFO or a device in place of the manifest or a shard is refused without
// blocking on the open (a FIFO) or reading without end (/dev/zero).
TEST_F(PackedDatasetTest, RefusesFifosInPlaceOfTheManifestOrAShard) {
  Write(false);
  std::filesystem::remove(dir_.File("validation-00000.bin"));
  ASSERT_EQ(mkfifo(dir_.File("validation-00000.bin").c_str(), 0600), 0);
  Result<PackedDataset> ds = PackedDataset::Open(dir());
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.error().message.find("validation-00000.bin: not a regular file"), std::string::npos)
      << ds.error().message;
  std::filesystem::remove(dir_.File("manifest.json"));
  ASSERT_EQ(mkfifo(dir_.File("manifest.json").c_str(), 0600), 0);
  ds = PackedDataset::Open(dir());
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.error().message.find("manifest.json: not a regular file"), std::string::npos)
      << ds.error().message;
  Result<DatasetManifest> zero = DatasetManifest::Read("/dev/zero");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace bert::formats
