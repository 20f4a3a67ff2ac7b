// bertctl submit's upload of corpus files the cluster cannot see.
//
// For each corpus source the spec's paths are expanded on this machine
// exactly as the agent's prepare stage expands them (data/input_plan.h
// ExpandSourcePaths: files, sorted glob matches, directories' files). A
// source is uploaded whole when its paths resolve here and some file lies
// outside every root bertd's agents share (ClusterInfo.shared_input_roots,
// and the spec's own directory when spec_dir_shared); with `always`, every
// source that resolves here is. Each file is hashed (SHA-256) first, then
// sent as content-addressed input "inputs/<sha256>" from what bertd already
// holds (GetInputUploadState): content bertd holds for this caller is not
// sent again, an interrupted upload resumes. Sizes over bertd's limit are
// refused before any byte is sent.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bert/v1/job.pb.h"
#include "bert/v1/job_service.pb.h"
#include "bert/v1/spec.pb.h"
#include "client/bert_client.h"

namespace bert::client {

enum class UploadMode { kAuto, kAlways, kNever };
// "auto", "always", "never"; INVALID_ARGUMENT otherwise.
absl::StatusOr<UploadMode> ParseUploadMode(const std::string& text);

struct PlannedInput {
  int source = 0;    // corpus.sources index
  std::string path;  // absolute, on this machine
  int64_t size_bytes = 0;
  std::string sha256;  // filled by HashInputs
};

// The files to upload for `spec` (normalised: absolute paths), submitted from
// `spec_dir`, given what bertd told (`info`). INVALID_ARGUMENT naming the
// file for one over the limit (or any, when uploads are off); with
// kAlways, for a source whose paths do not resolve here.
absl::StatusOr<std::vector<PlannedInput>> PlanUploads(const v1::JobSpec& spec,
                                                      const std::string& spec_dir,
                                                      const v1::ClusterInfo& info, UploadMode mode);

// Draws one transfer's progress on `out`: a bar redrawn in place on a
// terminal, otherwise a line when it starts and one when it ends.
class TransferProgress {
 public:
  TransferProgress(std::ostream& out, bool terminal) : out_(out), terminal_(terminal) {}
  void Start(const std::string& verb, const std::string& name, int64_t total, int64_t done = 0);
  void Update(int64_t done);
  // Ends the line with `note` (e.g. "3.0 MiB sent").
  void Finish(const std::string& note);
  // One finished line without a transfer ("uploading PATH: already on bertd").
  void Note(const std::string& verb, const std::string& name, const std::string& note) {
    out_ << verb << " " << name << ": " << note << std::endl;
  }
  bool terminal() const { return terminal_; }

 private:
  void Draw(bool force);
  std::ostream& out_;
  const bool terminal_;
  std::string verb_, name_;
  int64_t total_ = 0, done_ = 0, start_done_ = 0;
  int64_t started_ms_ = 0, drawn_ms_ = -1;
};

// Fills each file's sha256 (and checks its size did not change); a bar per
// file on a terminal, silent otherwise.
absl::Status HashInputs(std::vector<PlannedInput>& inputs, TransferProgress& progress);

struct UploadSummary {
  int files_sent = 0;
  int files_held = 0;  // already on bertd: no byte sent
  int64_t bytes_sent = 0;
};

// Uploads each hashed input (resuming, retrying transient failures) and
// returns what was sent.
absl::StatusOr<UploadSummary> UploadInputs(BertClient& client,
                                           const std::vector<PlannedInput>& inputs,
                                           TransferProgress& progress);

// "12.3 MiB", "512 B".
std::string FormatBytes(int64_t bytes);

}  // namespace bert::client
