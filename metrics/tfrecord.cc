#include "metrics/tfrecord.h"

#include <array>

namespace bert::metrics {
namespace {

// Byte-wise table for the reflected Castagnoli polynomial; built once.
constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();

void AppendLittleEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) {
    out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  }
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc = kCrc32cTable[(crc ^ byte) & 0xFF] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

uint32_t MaskCrc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

void AppendTfRecord(std::string_view data, std::string* out) {
  std::string header;
  AppendLittleEndian(data.size(), 8, &header);
  out->append(header);
  AppendLittleEndian(MaskCrc32c(Crc32c(header)), 4, out);
  out->append(data);
  AppendLittleEndian(MaskCrc32c(Crc32c(data)), 4, out);
}

}  // namespace bert::metrics
