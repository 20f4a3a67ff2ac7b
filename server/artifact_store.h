// Artifacts that move through the controller, on its disk under `root`:
// published ones at root/<artifact id>, uploads in progress under
// root/.partial/<artifact id>. The transfer protocol (chunks, resume offsets,
// directory manifests) is described in agent_service.proto.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"

namespace bert::server {

// Thread-safe for distinct artifact ids; concurrent uploads of the same id are
// not supported (the second one may fail its checksum and is then refused).
class ArtifactStore {
 public:
  explicit ArtifactStore(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  // InvalidArgument unless `id` is a relative path of [A-Za-z0-9._-] parts
  // without "." or "..". Same rule for a directory artifact's relative paths.
  static absl::Status CheckId(const std::string& id, const char* what = "artifact_id");
  std::string PathOf(const std::string& id) const { return root_ + "/" + id; }

  // Bytes held per file (relative path; "" for a file artifact) by an
  // interrupted upload of `id` whose content is `sha256`; empty when none.
  absl::StatusOr<std::map<std::string, int64_t>> HeldBytes(const std::string& id,
                                                          const std::string& sha256) const;

  // One UploadArtifact call. Not thread-safe. A partial upload of other
  // content (another sha256) under the same id is discarded at Begin.
  class Upload {
   public:
    // `header`: the first chunk's artifact (id, size_bytes, sha256, is_directory).
    static absl::StatusOr<Upload> Begin(ArtifactStore* store, const v1::Artifact& header);
    // Appends one chunk. FailedPrecondition naming the resume offset when the
    // chunk starts past the bytes held (resume_offset() then tells it);
    // DataLoss when its checksum does not match.
    absl::Status Write(const v1::ArtifactChunk& chunk);
    // Checks size and sha256 (a directory's manifest), fsyncs the bytes (every
    // file and directory), then publishes it by a rename and fsyncs its parent:
    // what Finish returns may be recorded. A full disk: RESOURCE_EXHAUSTED.
    absl::StatusOr<v1::Artifact> Finish();
    int64_t resume_offset() const { return resume_offset_; }
    int64_t bytes_received() const { return bytes_received_; }

   private:
    // RESOURCE_EXHAUSTED naming the artifact for a full disk (ENOSPC, EFBIG,
    // EDQUOT), after discarding the partial upload; else PosixError.
    absl::Status WriteError(const std::string& op, const std::string& path, int err);
    Upload(ArtifactStore* store, v1::Artifact header, std::string partial)
        : store_(store), header_(std::move(header)), partial_(std::move(partial)) {}
    ArtifactStore* store_;
    v1::Artifact header_;
    std::string partial_;
    int64_t resume_offset_ = -1;
    int64_t bytes_received_ = 0;
  };

  // Streams `artifact`, stored at `root`/`location`, from `offset` of
  // `relative_path` (a directory's file; empty: the file itself, or every file
  // of a directory from 0) through `send`, which returns false when the
  // receiver is gone. Every file is opened without following a symbolic link
  // below `root`, and its hash (a directory: the manifest of all its files) is
  // verified against the record before the first byte is sent: DataLoss when
  // they differ, FailedPrecondition for an artifact recorded without sha256.
  absl::Status Download(const v1::Artifact& artifact, const std::string& root,
                        const std::string& location, const std::string& relative_path,
                        int64_t offset, size_t chunk_bytes,
                        const std::function<bool(const v1::ArtifactChunk&)>& send) const {
    return Download(artifact, root, location, DownloadFrom{relative_path, offset, {}}, chunk_bytes,
                    send);
  }
  // Where a download starts: one file of a directory from `offset`, or
  // (relative_path empty) a file artifact from `offset`, or every file of a
  // directory from the bytes the receiver says it `held` of it (absent: 0; a
  // count past the file's end: 0 again, and the receiver's check fails).
  struct DownloadFrom {
    std::string relative_path;
    int64_t offset = 0;
    std::map<std::string, int64_t> held;
  };
  absl::Status Download(const v1::Artifact& artifact, const std::string& root,
                        const std::string& location, const DownloadFrom& from, size_t chunk_bytes,
                        const std::function<bool(const v1::ArtifactChunk&)>& send) const;

  // A read-only descriptor of the regular file `root`/`relative`, reached
  // without following symbolic links or '..' (PERMISSION_DENIED otherwise).
  static absl::StatusOr<int> OpenBeneath(const std::string& root, const std::string& relative);

 private:
  std::string PartialPath(const std::string& id) const { return root_ + "/.partial/" + id; }
  // Beside the partial data: the sha256 of the content being uploaded.
  static std::string ContentFile(const std::string& partial) { return partial + ".sha256"; }

  std::string root_;
};

}  // namespace bert::server
