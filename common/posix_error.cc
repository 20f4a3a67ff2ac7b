#include "common/posix_error.h"

#include <cerrno>
#include <cstring>


namespace bert {

absl::Status PosixError(std::string_view op, std::string_view path, int err) {
  std::string message = std::string(op) + " " + std::string(path) + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: case ENOTDIR: return absl::NotFoundError(message);
    case EEXIST: return absl::AlreadyExistsError(message);
    case EACCES: case EPERM: return absl::PermissionDeniedError(message);
    case ENOSPC: case EDQUOT: case ENOMEM: return absl::ResourceExhaustedError(message);
    case EINVAL: case EISDIR: case ENAMETOOLONG: return absl::InvalidArgumentError(message);
    default: return absl::InternalError(message);
  }
}

}  // namespace bert
