// FormatsStatus: a formats/ error (formats/result.h) as an absl::Status, for
// the service side; the message, which names the file and field, is kept.
#pragma once

#include "absl/status/status.h"
#include "formats/result.h"

namespace bert::data {

// kNotFound -> NotFound, kIoError -> by errno (as PosixError), kUnsupported and
// kInvalidArgument -> InvalidArgument, kMalformed and kCorrupt -> DataLoss,
// kOutOfRange -> OutOfRange.
absl::Status FormatsStatus(const formats::Error& error);
inline absl::Status FormatsStatus(const formats::Status& status) {
  return status.ok() ? absl::OkStatus() : FormatsStatus(status.error());
}

}  // namespace bert::data
