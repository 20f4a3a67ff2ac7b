// TFRecord framing, the container of TensorBoard event files. std-only.
//
// A record is: uint64 length (little-endian), uint32 masked CRC32C of those
// 8 length bytes, `length` bytes of data, uint32 masked CRC32C of the data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bert::metrics {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `data`.
uint32_t Crc32c(std::string_view data);

// TensorFlow's masked CRC: rotate right by 15 bits, add 0xa282ead8.
uint32_t MaskCrc32c(uint32_t crc);

// Appends one framed record holding `data` to `*out`.
void AppendTfRecord(std::string_view data, std::string* out);

}  // namespace bert::metrics
