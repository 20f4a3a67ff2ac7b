// SHA-256 through OpenSSL's EVP interface, as lowercase hex.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace bert {

// Incremental hasher. Not thread-safe.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(std::string_view data);
  // Returns the digest as 64 hex chars; the hasher is reset afterwards.
  std::string HexDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string Sha256Hex(std::string_view data);

// Hashes a whole file, reading it in 1 MiB chunks.
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace bert
