// BertClient: the C++ client of bertd's JobService, for bertctl and for other
// services that link `bert_client`.
//
// Every call attaches `authorization: Bearer <token>` when a token is set and
// returns bertd's gRPC status as an absl::Status with the same code (e.g.
// kUnavailable when bertd cannot be reached, kNotFound for an unknown job).
// Thread-safe: one client may serve many threads (gRPC stubs are).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "protocol/artifact_download.h"

namespace bert::client {

// The address bertctl and the client use when none is given.
inline constexpr char kDefaultServer[] = "127.0.0.1:7070";

struct ClientOptions {
  std::string address = kDefaultServer;  // HOST:PORT
  std::string token;                     // bearer token; empty = none
  // TLS: used when any is set. `tls_ca_file` verifies the server (empty = the
  // system roots); cert + key authenticate the client (mutual TLS).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  int64_t timeout_ms = 30000;  // deadline of each unary call
};

struct WatchOptions {
  int64_t after_seq = 0;  // deliver events with seq > after_seq
  bool follow = true;     // keep streaming new events until the job finishes
  // A dropped stream (UNAVAILABLE, bertd shutting down, or a followed stream
  // that ended before the job finished) is reopened after the last seq seen,
  // waiting 200 ms, 400 ms, ... (at most 5 s) between tries; this many failed
  // tries in a row end the watch with the last error.
  int max_reconnects = 10;
  // When > 0, replaces max_reconnects: tries go on until this long has passed
  // since the stream broke, then the watch ends with UNAVAILABLE ("gave up
  // reconnecting ...").
  int64_t reconnect_timeout_ms = 0;
  // Called before each wait to reconnect: the error, the wait, and the last
  // seq delivered (the stream resumes after it). bertctl says so on stderr.
  std::function<void(const absl::Status& error, int64_t wait_ms, int64_t last_seq)> on_reconnect;
};

class BertClient {
 public:
  // Reads the TLS files (if any) and opens a channel; does not connect yet.
  static absl::StatusOr<std::unique_ptr<BertClient>> Create(const ClientOptions& options);
  // Over an existing channel (tests, in-process servers).
  BertClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options);

  absl::StatusOr<bert::v1::SubmitJobResponse> SubmitJob(const bert::v1::SubmitJobRequest& request);
  absl::StatusOr<bert::v1::ValidateSpecResponse> ValidateSpec(
      const bert::v1::ValidateSpecRequest& request);
  absl::StatusOr<bert::v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<bert::v1::ListJobsResponse> ListJobs(const bert::v1::ListJobsRequest& request);
  absl::StatusOr<bert::v1::Job> CancelJob(const std::string& job_id, const std::string& reason);
  absl::StatusOr<bert::v1::ListCheckpointsResponse> ListCheckpoints(const std::string& job_id);
  // Every point of the job's named metrics (all when `names` is empty),
  // fetched a page of `page_size` points at a time (0 = bertd's page size)
  // and joined into one series per name.
  absl::StatusOr<bert::v1::GetMetricsResponse> GetMetrics(const std::string& job_id,
                                                          const std::vector<std::string>& names,
                                                          int page_size = 0);
  absl::StatusOr<bert::v1::ListAgentsResponse> ListAgents(const std::string& pool);

  // Lifecycle verbs (bert_client_lifecycle.cc): RetryJob, PauseJob,
  // ResumeJob, DeleteJob, each answered with the job (or what was deleted).
  absl::StatusOr<bert::v1::Job> RetryJob(const std::string& job_id);
  absl::StatusOr<bert::v1::Job> PauseJob(const std::string& job_id, const std::string& reason);
  absl::StatusOr<bert::v1::Job> ResumeJob(const std::string& job_id);
  absl::StatusOr<bert::v1::DeleteJobResponse> DeleteJob(const std::string& job_id);

  // A job's artifacts (bert_client_artifacts.cc): what it produced that bertd
  // serves, checkpoints too when asked.
  absl::StatusOr<bert::v1::ListJobArtifactsResponse> ListJobArtifacts(const std::string& job_id,
                                                                      bool include_checkpoints);
  // Fetches `artifact` of job `job_id` to `dest` by PullArtifact, with the
  // rules of protocol/artifact_download.h (resumed from "<dest>.partial",
  // verified whole before it is renamed to `dest`; a `dest` holding anything
  // else is replaced, so callers check it first).
  absl::Status PullArtifact(const std::string& job_id, const bert::v1::Artifact& artifact,
                            const std::string& dest, const protocol::DownloadOptions& options);

  // Data from this machine (bert_client_inputs.cc). What bertd tells a
  // submitter before a submit: the roots its agents share, the upload limit.
  absl::StatusOr<bert::v1::ClusterInfo> GetClusterInfo();
  // Bytes bertd holds of the input of content `sha256` for this caller: its
  // size when held whole, else what an interrupted upload left (0: none).
  absl::StatusOr<int64_t> GetInputUploadState(const std::string& sha256);
  // Sends the file at `path` (content `sha256`, `size_bytes` bytes) as input
  // "inputs/<sha256>", starting at byte `offset` (what bertd holds), in
  // checksummed chunks; `progress(bytes_sent_so_far_including_offset)` after
  // each chunk. Returns bertd's record of it. A file that changed since it
  // was hashed fails (DATA_LOSS from bertd's check).
  absl::StatusOr<bert::v1::Artifact> UploadInput(const std::string& path, const std::string& sha256,
                                                 int64_t size_bytes, int64_t offset,
                                                 const std::function<void(int64_t)>& progress);

  // Calls `on_event` for each event of the job in seq order, never twice for
  // one seq, reconnecting after dropped streams (see WatchOptions). Returns OK
  // when the stream ends normally (the job finished, or !follow and the
  // history is delivered) or `on_event` returns false.
  absl::Status WatchJob(const std::string& job_id, const WatchOptions& options,
                        const std::function<bool(const bert::v1::Event&)>& on_event);

 private:
  // A context with the deadline (unless `streaming`) and the bearer token.
  std::unique_ptr<grpc::ClientContext> NewContext(bool streaming) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<bert::v1::JobService::Stub> stub_;
};

}  // namespace bert::client
