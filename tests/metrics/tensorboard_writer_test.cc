// Reads the event files TensorBoardWriter writes back, byte by byte: TFRecord
// framing and masked CRC32Cs, then the Event/Summary protobuf fields. When
// protoc is installed the records are also decoded by protoc against the
// upstream field numbers (testdata/tensorboard_event.proto).
#include "metrics/tensorboard_writer.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "metrics/tfrecord.h"

namespace bert::metrics {
namespace {

namespace fs = std::filesystem;

struct ParsedEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::string tag;
  std::optional<float> simple_value;
};

uint64_t ReadLittleEndian(const std::string& data, size_t pos, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(data[pos + i])) << (8 * i);
  }
  return value;
}

// Minimal protobuf reader: enough for the fields above; fails the test on
// anything malformed.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  uint64_t Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      EXPECT_LT(pos_, data_.size()) << "truncated varint";
      if (pos_ >= data_.size()) return 0;
      unsigned char byte = data_[pos_++];
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    ADD_FAILURE() << "varint too long";
    return 0;
  }
  std::string_view Bytes() {
    uint64_t size = Varint();
    EXPECT_LE(pos_ + size, data_.size()) << "truncated length-delimited field";
    std::string_view out = data_.substr(pos_, size);
    pos_ += size;
    return out;
  }
  uint64_t Fixed(int bytes) {
    EXPECT_LE(pos_ + bytes, data_.size());
    uint64_t value = ReadLittleEndian(std::string(data_.substr(pos_, bytes)), 0, bytes);
    pos_ += bytes;
    return value;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

ParsedEvent ParseEvent(std::string_view data) {
  ParsedEvent event;
  WireReader reader(data);
  while (!reader.done()) {
    uint64_t key = reader.Varint();
    int field = key >> 3, wire = key & 7;
    if (field == 1 && wire == 1) {
      uint64_t bits = reader.Fixed(8);
      std::memcpy(&event.wall_time, &bits, 8);
    } else if (field == 2 && wire == 0) {
      event.step = static_cast<int64_t>(reader.Varint());
    } else if (field == 3 && wire == 2) {
      event.file_version = std::string(reader.Bytes());
    } else if (field == 5 && wire == 2) {
      WireReader summary(reader.Bytes());
      while (!summary.done()) {
        uint64_t skey = summary.Varint();
        EXPECT_EQ(skey, (1u << 3) | 2) << "Summary.value expected";
        WireReader value(summary.Bytes());
        while (!value.done()) {
          uint64_t vkey = value.Varint();
          if (vkey == ((1u << 3) | 2)) {
            event.tag = std::string(value.Bytes());
          } else if (vkey == ((2u << 3) | 5)) {
            uint32_t bits = value.Fixed(4);
            float f;
            std::memcpy(&f, &bits, 4);
            event.simple_value = f;
          } else {
            ADD_FAILURE() << "unexpected Summary.Value key " << vkey;
            return event;
          }
        }
      }
    } else {
      ADD_FAILURE() << "unexpected Event field " << field << " wire type " << wire;
      return event;
    }
  }
  return event;
}

// Splits a TFRecord file into its payloads, checking every length and CRC.
std::vector<std::string> ReadRecords(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string data = buffer.str();
  std::vector<std::string> records;
  size_t pos = 0;
  while (pos < data.size()) {
    if (pos + 12 > data.size()) {
      ADD_FAILURE() << "truncated record header at byte " << pos;
      break;
    }
    const uint64_t length = ReadLittleEndian(data, pos, 8);
    const uint32_t length_crc = ReadLittleEndian(data, pos + 8, 4);
    EXPECT_EQ(length_crc, MaskCrc32c(Crc32c(std::string_view(data).substr(pos, 8))))
        << "length CRC at byte " << pos;
    if (pos + 12 + length + 4 > data.size()) {
      ADD_FAILURE() << "truncated record at byte " << pos;
      break;
    }
    std::string payload = data.substr(pos + 12, length);
    const uint32_t data_crc = ReadLittleEndian(data, pos + 12 + length, 4);
    EXPECT_EQ(data_crc, MaskCrc32c(Crc32c(payload))) << "data CRC at byte " << pos;
    records.push_back(std::move(payload));
    pos += 12 + length + 4;
  }
  return records;
}

class TensorBoardWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tb_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 (iSCSI) test vectors and the classic check value.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(""), 0u);
  // TensorFlow's mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
  EXPECT_EQ(MaskCrc32c(0), 0xa282ead8u);
  EXPECT_EQ(MaskCrc32c(0xE3069283u), ((0xE3069283u >> 15) | (0xE3069283u << 17)) + 0xa282ead8u);
}

TEST_F(TensorBoardWriterTest, WritesVersionThenScalars) {
  std::string path;
  {
    TensorBoardWriter writer((dir_ / "runs").string());
    ASSERT_TRUE(writer.ok()) << writer.error();
    path = writer.path();
    EXPECT_TRUE(writer.AddScalar("train/loss", 2.5, 10, 1700000000.25));
    EXPECT_TRUE(writer.AddScalar("train/learning_rate", 5e-5, 10, 1700000000.5));
    EXPECT_TRUE(writer.AddScalar("eval/accuracy", 0.125, 1ll << 40, 1700000001.0));
    EXPECT_TRUE(writer.AddScalar("train/loss", -1.0, -3, 1700000002.0));
    EXPECT_TRUE(writer.Flush());
  }
  EXPECT_EQ(fs::path(path).parent_path(), dir_ / "runs");
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u) << path;

  std::vector<std::string> records = ReadRecords(path);
  ASSERT_EQ(records.size(), 5u);
  ParsedEvent version = ParseEvent(records[0]);
  EXPECT_EQ(version.file_version, "brain.Event:2");
  EXPECT_GT(version.wall_time, 1.6e9);
  EXPECT_FALSE(version.simple_value.has_value());

  ParsedEvent loss = ParseEvent(records[1]);
  EXPECT_EQ(loss.tag, "train/loss");
  EXPECT_EQ(loss.step, 10);
  EXPECT_DOUBLE_EQ(loss.wall_time, 1700000000.25);
  ASSERT_TRUE(loss.simple_value.has_value());
  EXPECT_FLOAT_EQ(*loss.simple_value, 2.5f);

  ParsedEvent lr = ParseEvent(records[2]);
  EXPECT_EQ(lr.tag, "train/learning_rate");
  EXPECT_FLOAT_EQ(*lr.simple_value, 5e-5f);

  ParsedEvent big = ParseEvent(records[3]);
  EXPECT_EQ(big.step, 1ll << 40);
  EXPECT_FLOAT_EQ(*big.simple_value, 0.125f);

  ParsedEvent negative = ParseEvent(records[4]);
  EXPECT_EQ(negative.step, -3);
  EXPECT_FLOAT_EQ(*negative.simple_value, -1.0f);
}

TEST_F(TensorBoardWriterTest, FlushMakesRecordsVisibleWhileOpen) {
  TensorBoardWriter writer(dir_.string());
  ASSERT_TRUE(writer.ok()) << writer.error();
  for (int step = 1; step <= 100; ++step) writer.AddScalar("train/loss", 10.0 / step, step);
  ASSERT_TRUE(writer.Flush());
  std::vector<std::string> records = ReadRecords(writer.path());
  ASSERT_EQ(records.size(), 101u);
  ParsedEvent last = ParseEvent(records.back());
  EXPECT_EQ(last.step, 100);
  EXPECT_FLOAT_EQ(*last.simple_value, 0.1f);
}

TEST_F(TensorBoardWriterTest, TwoWritersNeverShareAFile) {
  TensorBoardWriter a(dir_.string());
  TensorBoardWriter b(dir_.string());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a.path(), b.path());
}

TEST_F(TensorBoardWriterTest, ConcurrentWritersProduceWholeRecords) {
  TensorBoardWriter writer(dir_.string());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&writer, t] {
      for (int i = 0; i < 250; ++i) writer.AddScalar("thread/" + std::to_string(t), i, i);
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(writer.Flush());
  EXPECT_EQ(ReadRecords(writer.path()).size(), 1001u);
}

TEST_F(TensorBoardWriterTest, UnwritableDirectoryIsAnErrorNotACrash) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  TensorBoardWriter writer((dir_ / "file" / "runs").string());
  EXPECT_FALSE(writer.ok());
  EXPECT_NE(writer.error().find((dir_ / "file" / "runs").string()), std::string::npos)
      << writer.error();
  EXPECT_FALSE(writer.AddScalar("train/loss", 1, 1));
  EXPECT_FALSE(writer.Flush());
}

// Independent decoding: protoc, given the upstream field numbers, must read
// every record as a tensorflow.Event.
TEST_F(TensorBoardWriterTest, ProtocDecodesRecordsAsTensorFlowEvents) {
  if (std::system("protoc --version > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "protoc is not installed";
  }
  const char* source = std::getenv("BERT_SOURCE_DIR");
  const fs::path proto_dir =
      fs::path(source != nullptr ? source : BERT_TEST_SOURCE_DIR) / "tests/metrics/testdata";
  TensorBoardWriter writer(dir_.string());
  writer.AddScalar("train/tokens_per_second", 1234.5, 77, 1700000000.0);
  ASSERT_TRUE(writer.Flush());
  std::vector<std::string> records = ReadRecords(writer.path());
  ASSERT_EQ(records.size(), 2u);
  const fs::path record_file = dir_ / "record.bin";
  std::ofstream(record_file, std::ios::binary) << records[1];
  const fs::path decoded = dir_ / "decoded.txt";
  const std::string command = "protoc --proto_path=" + proto_dir.string() +
                              " --decode=tensorflow.Event tensorboard_event.proto < " +
                              record_file.string() + " > " + decoded.string() + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(decoded);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("step: 77"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("tag: \"train/tokens_per_second\""), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("simple_value: 1234.5"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("wall_time: 1700000000"), std::string::npos) << text.str();
}

}  // namespace
}  // namespace bert::metrics
