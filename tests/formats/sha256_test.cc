// formats::Sha256: FIPS 180-4 vectors, streaming in pieces, files, and the
// same digests as the service side's OpenSSL SHA-256 (common/sha256.h).
#include "formats/sha256.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "common/sha256.h"
#include "tests/testing/temp_dir.h"

namespace bert::formats {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, PiecesGiveTheSameDigestAndHexDigestResets) {
  const std::string text(1000, 'x');
  Sha256 pieces;
  for (size_t i = 0; i < text.size(); i += 7) {
    pieces.Update(text.data() + i, std::min<size_t>(7, text.size() - i));
  }
  EXPECT_EQ(pieces.HexDigest(), Sha256Hex(text));
  pieces.Update("abc");  // a fresh hash after HexDigest
  EXPECT_EQ(pieces.HexDigest(), Sha256Hex("abc"));
}

TEST(Sha256Test, MatchesOpenSslOnAMegabyteAtEveryLengthNearABlock) {
  std::string data(1 << 20, '\0');
  uint32_t x = 12345;
  for (char& c : data) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  EXPECT_EQ(Sha256Hex(data), bert::Sha256Hex(data));
  // Padding edge cases: lengths around the 55/56/64-byte boundaries.
  for (size_t n = 0; n <= 130; ++n) {
    const std::string_view prefix(data.data(), n);
    ASSERT_EQ(Sha256Hex(prefix), bert::Sha256Hex(prefix)) << "length " << n;
  }
}

TEST(Sha256Test, HashesFilesAndNamesAMissingOne) {
  testing::TempDir dir("formats_sha_");
  const std::string path = dir.File("data.bin");
  std::ofstream(path, std::ios::binary) << std::string(3 << 20, 'z') << "tail";
  uint64_t size = 0;
  Result<std::string> sha = Sha256File(path, &size);
  ASSERT_TRUE(sha.ok()) << sha.error().message;
  EXPECT_EQ(*sha, Sha256Hex(std::string(3 << 20, 'z') + "tail"));
  EXPECT_EQ(size, (3u << 20) + 4);
  Result<std::string> missing = Sha256File(dir.File("nope.bin"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("nope.bin"), std::string::npos);
}

}  // namespace
}  // namespace bert::formats
