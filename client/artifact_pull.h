// `bertctl pull`'s rules, apart from the command line: which artifact a NAME
// means, and how a pull lands in the user's directory.
//
// A directory artifact (model, tokenizer, dataset, tensorboard, a checkpoint)
// becomes DIR itself; a file artifact lands as DIR/<name>. Bytes arrive in a
// hidden staging sibling (".<DIR>.bertctl-pull", its partial download beside
// it), resume from there when a pull is run again, and are verified against
// the artifact's SHA-256 before they are renamed to DIR. DIR must not exist,
// be empty, or hold an earlier pull of the same job's same artifact (marker
// file kPullMarker inside it), which is replaced only once the new copy is
// complete: a pull never overwrites or deletes files it did not write.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bert/v1/job.pb.h"
#include "client/bert_client.h"

namespace bert::client {

// The marker a pulled directory holds: "job <id>\nartifact <id>\nsha256 <hex>\n".
inline constexpr char kPullMarker[] = ".bertctl-pull";

// The artifact NAME means among a job's `artifacts`: "model", "tokenizer",
// "dataset", "tensorboard", "checkpoint-<step>", any other artifact name, or
// an artifact id. NOT_FOUND naming what the job has.
absl::StatusOr<bert::v1::Artifact> SelectArtifact(const std::vector<bert::v1::Artifact>& artifacts,
                                                  const std::string& job_id,
                                                  const std::string& name);

struct PullOptions {
  // Bytes held and the artifact's size, as they arrive. May be empty.
  std::function<void(int64_t have, int64_t total)> progress;
  int64_t limit_bytes_per_second = 0;  // 0: as fast as it comes
};

struct PullResult {
  std::string path;           // DIR, or DIR/<name> for a file artifact
  bool already_there = false;  // DIR held exactly this artifact: nothing moved
  int64_t resumed_from = 0;   // bytes an interrupted pull had left
};

// Pulls `artifact` of `job_id` into `dir` by the rules above.
// FAILED_PRECONDITION naming `dir` when it holds anything else.
absl::StatusOr<PullResult> PullInto(BertClient& client, const std::string& job_id,
                                    const bert::v1::Artifact& artifact, const std::string& dir,
                                    const PullOptions& options);

}  // namespace bert::client
