// Corpus files uploaded from a submitting machine (JobService.UploadInput):
// content-addressed artifacts "inputs/<sha256>" (protocol/artifact_ids.h),
// stored once under <artifact root>/inputs/<sha256> by the same chunked,
// resumable, verified ArtifactStore::Upload the agents' uploads use, and
// recorded in the store like any artifact, with the subjects who uploaded
// them (Artifact.uploaded_by).
//
// Who may use what: an input is named in a SubmitJob (Job.input_files) only
// by a caller who uploaded it (or an admin), so a sha256 seen in another
// user's job record does not open that user's file. A caller whose content is
// already held under its own name sends no bytes again; another caller
// uploading the same content sends it whole, it is verified against the held
// hash, and the caller is added to uploaded_by: still stored once.
//
// Lifetime: an input is referenced by every job record naming it
// (ReferencedInputs); the deletion collector removes unreferenced ones (see
// server/README.md).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "bert/v1/job.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "server/artifact_store.h"
#include "server/clock.h"
#include "storage/store.h"

namespace bert::server {

// The default of bertd --max-upload-bytes: 20 GiB per file.
inline constexpr int64_t kDefaultMaxUploadBytes = int64_t{20} << 30;
// Files a job may name in SubmitJobRequest.input_files (its record holds them all).
inline constexpr int kMaxInputFilesPerJob = 10'000;

// True when `job` names the input of content `sha256` (Job.input_files).
bool JobNamesInput(const v1::Job& job, const std::string& sha256);

// Thread-safe. `artifacts`, `store` and `clock` must outlive it.
class InputStore {
 public:
  // `max_upload_bytes`: the largest file accepted (0: uploads refused).
  InputStore(ArtifactStore* artifacts, storage::Store* store, const Clock* clock,
             int64_t max_upload_bytes)
      : artifacts_(artifacts), store_(store), clock_(clock), max_upload_bytes_(max_upload_bytes) {}

  int64_t max_upload_bytes() const { return max_upload_bytes_; }

  // The record of input `sha256` when its content is held (recorded, and its
  // file present with the recorded size); nullopt otherwise.
  absl::StatusOr<std::optional<v1::Artifact>> Find(const std::string& sha256) const;

  // What GetInputUploadState answers for `subject`: every byte (the size)
  // when it holds the content under `subject`'s name, else the bytes an
  // interrupted upload left (0: none). INVALID_ARGUMENT for a bad sha256.
  absl::StatusOr<int64_t> HeldBytes(const std::string& sha256, const std::string& subject) const;

  // One UploadInput call. Not thread-safe itself; the store refuses a second
  // concurrent upload of the same content (ABORTED: retry).
  class Upload {
   public:
    Upload(Upload&&) = default;
    Upload& operator=(Upload&&) = default;
    ~Upload();
    // Set when the content is already held under the caller's name: nothing
    // is to be received, and this is its record.
    const std::optional<v1::Artifact>& held() const { return held_; }
    // Where the chunks go (only when !held()).
    ArtifactStore::Upload& bytes() { return *bytes_; }
    // Verifies and publishes the bytes (ArtifactStore::Upload::Finish), then
    // records the input with the caller among uploaded_by. Returns held()
    // when it is set.
    absl::StatusOr<v1::Artifact> Finish();

   private:
    friend class InputStore;
    Upload() = default;
    InputStore* inputs_ = nullptr;
    std::string sha256_;
    std::string subject_;
    std::optional<v1::Artifact> held_;
    std::optional<ArtifactStore::Upload> bytes_;
    bool in_flight_ = false;  // this upload holds sha256_ in inputs_->in_flight_
  };

  // Starts the upload `header` (id "inputs/<sha256>" or empty, sha256, size,
  // a file) for `subject`. Checked before any byte is accepted: the header's
  // shape (INVALID_ARGUMENT), and the size limit (RESOURCE_EXHAUSTED naming
  // it; FAILED_PRECONDITION when uploads are off).
  absl::StatusOr<Upload> Begin(const v1::Artifact& header, const std::string& subject);

  // OK when a SubmitJob by `subject` may name `files`: at most
  // kMaxInputFilesPerJob, each with an absolute path, a source index >= 0,
  // and held content of that sha256 and size uploaded by `subject` (any
  // uploader's when `admin`). FAILED_PRECONDITION naming the file otherwise.
  absl::Status CheckSubmitted(const google::protobuf::RepeatedPtrField<v1::InputFile>& files,
                              const std::string& subject, bool admin) const;

  // The sha256 of every input some stored job names (what the collector
  // must keep).
  static absl::StatusOr<std::set<std::string>> ReferencedInputs(const storage::Store& store);

  // Deletes input `sha256`: its file first (and any partial upload), then
  // its record. The caller makes sure no job names it (ReferencedInputs).
  absl::Status Remove(const std::string& sha256);

 private:
  absl::StatusOr<v1::Artifact> Record(v1::Artifact artifact, const std::string& subject);
  void EndUpload(const std::string& sha256) ABSL_LOCKS_EXCLUDED(mu_);

  ArtifactStore* const artifacts_;
  storage::Store* const store_;
  const Clock* const clock_;
  const int64_t max_upload_bytes_;
  mutable absl::Mutex mu_;
  std::set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);  // contents being uploaded
};

}  // namespace bert::server
