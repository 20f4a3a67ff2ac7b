// How an artifact on local disk is described and checked: a file by its size
// and SHA-256; a directory by the SHA-256 of its manifest, one line
// "<sha256-hex> <size> <relative_path>\n" per regular file, sorted by
// relative_path bytewise (the definition in agent_service.proto), and by the
// sum of its files' sizes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/job.pb.h"

namespace bert::agent {

struct ManifestEntry {
  std::string relative_path;  // '/'-separated, inside the directory
  int64_t size = 0;
  std::string sha256;
};

struct LocalArtifact {
  bool is_directory = false;
  int64_t size_bytes = 0;
  std::string sha256;                // of the file, or of ManifestText(files)
  std::vector<ManifestEntry> files;  // directories only, sorted
};

std::string ManifestText(const std::vector<ManifestEntry>& files);

// Hashes a file or every regular file under a directory.
absl::StatusOr<LocalArtifact> DescribeLocalArtifact(const std::string& path);

// DATA_LOSS naming the path and what differs when `path` is not exactly `expected`
// (size and sha256; a missing path is NOT_FOUND).
absl::Status VerifyLocalArtifact(const std::string& path, const v1::Artifact& expected);

}  // namespace bert::agent
