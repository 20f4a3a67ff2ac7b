#include "data/formats_status.h"

#include "common/posix_error.h"

namespace bert::data {

absl::Status FormatsStatus(const formats::Error& error) {
  using formats::ErrorCode;
  switch (error.code) {
    case ErrorCode::kNotFound: return absl::NotFoundError(error.message);
    case ErrorCode::kIoError:
      if (error.sys_errno != 0) {
        return absl::Status(PosixError("", "", error.sys_errno).code(), error.message);
      }
      return absl::InternalError(error.message);
    case ErrorCode::kUnsupported:
    case ErrorCode::kInvalidArgument: return absl::InvalidArgumentError(error.message);
    case ErrorCode::kMalformed:
    case ErrorCode::kCorrupt: return absl::DataLossError(error.message);
    case ErrorCode::kOutOfRange: return absl::OutOfRangeError(error.message);
  }
  return absl::InternalError(error.message);
}

}  // namespace bert::data
