// Error, Result<T> and Status: how the formats library reports failure.
//
// formats/ links only the standard library (the engine uses it), so it cannot
// return absl::Status; callers convert: data/ to absl::Status, the engine to
// EngineError. Every message names the file and, where there is one, the field
// ("DIR/manifest.json: splits.train.shards[0].blocks: ...").
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace bert::formats {

// Coarse enough to map onto absl::StatusCode and the engine's FailureCause.
enum class ErrorCode {
  kNotFound,         // a file, or a split, that is not there
  kIoError,          // open/stat/mmap/read failed; Error::sys_errno says why
  kUnsupported,      // not this format, or a format version this build does not read
  kMalformed,        // the manifest breaks the format's rules
  kCorrupt,          // a shard's size or SHA-256 disagrees with the manifest
  kOutOfRange,       // a block index past the end of a split
  kInvalidArgument,  // a caller's mistake, e.g. an output buffer of the wrong size
};

struct Error {
  ErrorCode code;
  std::string message;  // names the file and the field
  int sys_errno = 0;    // the errno of a failed system call, else 0
};

// A value or an Error. Accessing value() of an error is a programming error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  const Error& error() const { return std::get<1>(v_); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> v_;
};

// Success, or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;                                       // success
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit
  bool ok() const { return !error_.has_value(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace bert::formats
