// How an artifact is described on the wire (bert.v1.Artifact size_bytes,
// sha256, is_directory) and checked on either side of a transfer:
// - a file: its size and the SHA-256 of its bytes;
// - a directory: the sum of its regular files' sizes and the SHA-256 of its
//   manifest, one line "<sha256-hex> <size> <relative_path>\n" per regular
//   file, relative_path '/'-separated and the lines sorted by it bytewise
//   (see agent_service.proto). Other entries (links, sockets, empty
//   directories) are not part of it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/job.pb.h"

namespace bert::protocol {

struct ManifestEntry {
  std::string relative_path;  // '/'-separated, inside the directory
  int64_t size = 0;
  std::string sha256;  // hex
};

// "<sha256> <size> <relative_path>\n".
std::string ManifestLine(const ManifestEntry& file);

// The lines of `files`, in the order given (callers pass them sorted).
std::string ManifestText(const std::vector<ManifestEntry>& files);

// The regular files under `dir` as '/'-separated relative paths, sorted
// bytewise: the manifest's order. Empty when `dir` is missing or unreadable.
std::vector<std::string> ListManifestFiles(const std::string& dir);

struct LocalArtifact {
  bool is_directory = false;
  int64_t size_bytes = 0;
  std::string sha256;                // of the file, or of ManifestText(files)
  std::vector<ManifestEntry> files;  // directories only, sorted
};

// Hashes a file or every regular file under a directory. NotFound when `path`
// does not exist; InvalidArgument when it is neither a file nor a directory.
absl::StatusOr<LocalArtifact> DescribeLocalArtifact(const std::string& path);

// DataLoss naming the artifact, the path and what differs when `path` is not
// exactly `expected` (kind, size and, when expected has one, sha256); a
// missing path is NotFound.
absl::Status VerifyLocalArtifact(const std::string& path, const v1::Artifact& expected);

}  // namespace bert::protocol
