// UTF-8 checks used by the corpus readers.
#pragma once

#include <cstddef>
#include <string_view>

namespace bert::data {

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF). ASCII runs are checked 8 bytes at a time.
bool IsValidUtf8(std::string_view text);

// Number of code points in `text`, which must be valid UTF-8.
size_t CountCodePoints(std::string_view text);

}  // namespace bert::data
