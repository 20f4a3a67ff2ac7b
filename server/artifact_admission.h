// What an agent may claim as an artifact, and which local paths the controller
// may serve. An agent reports or uploads only artifacts of the piece it runs:
// the id (when set) names that job and stage (a checkpoint: pretrain), a name
// is one path part, and the uri is "bertd://<id>" (uploaded) or a "file://"
// path under "<root>/<job>/<stage>/" of one of the controller's roots (its
// artifact root, then the shared roots it declares: --shared-artifact-root),
// with no "." or ".." part and no symbolic link leading out of it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"

namespace bert::server {

// Immutable after construction; thread-safe.
class ArtifactAdmission {
 public:
  // `roots`: absolute directories; the first is the controller's artifact root.
  explicit ArtifactAdmission(std::vector<std::string> roots);

  // OK when `artifact`, reported by the piece `ref` (a stage output, or with
  // `checkpoint` a checkpoint record's artifact), belongs to it;
  // INVALID_ARGUMENT or PERMISSION_DENIED naming the artifact otherwise.
  absl::Status CheckReported(const v1::AssignmentRef& ref, const v1::Artifact& artifact,
                             bool checkpoint) const;
  // OK when an upload of `artifact_id` by the piece `ref` may proceed.
  absl::Status CheckUpload(const v1::AssignmentRef& ref, const std::string& artifact_id) const;

  // Where the recorded `artifact` lies on this host, split as (root, path
  // relative to it) for ArtifactStore::Download, which opens it without
  // following links. PERMISSION_DENIED for a file:// uri outside the roots
  // (e.g. a spec's tokenizer.from: agents read those themselves).
  struct Location {
    std::string root;
    std::string relative;
  };
  absl::StatusOr<Location> Locate(const v1::Artifact& artifact) const;

  const std::vector<std::string>& roots() const { return roots_; }

 private:
  // The root `path` lies under "<root>/<job>/<stage>/", as a Location.
  absl::StatusOr<Location> Contain(const std::string& what, const std::string& path,
                                   const std::string& job_id, v1::StageKind stage) const;

  std::vector<std::string> roots_;  // lexically normal, no trailing '/'
};

}  // namespace bert::server
