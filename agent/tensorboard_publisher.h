// Uploads the pretrain stage's TensorBoard event files to the controller as
// they are written, so `bertctl pull JOB tensorboard` gives a directory that
// `tensorboard --logdir` reads during and after training.
//
// Every `interval` while training runs, and once more at Finish(), the event
// directory is copied to a snapshot beside it (the worker keeps appending to
// its files; an upload must describe bytes that do not move) and, when it
// differs from the last one sent, handed to `publish`. Failures are logged
// and never fail the stage: TensorBoard logs are a view, the metrics are
// reported anyway.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace bert::agent {

class TensorBoardPublisher {
 public:
  // Sends the directory at `path`; returns its status.
  using Publish = std::function<absl::Status(const std::string& path)>;
  using Log = std::function<void(const std::string& message)>;

  // Starts the periodic uploads of `events_dir` (which may not exist yet),
  // snapshotting into `snapshot_dir`. `publish` and `log` are called from the
  // publisher's thread, and from Finish()'s caller.
  TensorBoardPublisher(std::string events_dir, std::string snapshot_dir,
                       std::chrono::milliseconds interval, Publish publish, Log log);
  // Stops the thread (without the final upload when Finish was not called).
  ~TensorBoardPublisher();
  TensorBoardPublisher(const TensorBoardPublisher&) = delete;
  TensorBoardPublisher& operator=(const TensorBoardPublisher&) = delete;

  // Stops the periodic uploads and sends what the directory holds now.
  void Finish();

  // Uploads done (a snapshot that differed from the previous one and was sent).
  int uploads() const;

 private:
  void Loop();
  // Snapshots and, when changed, publishes once.
  void PublishOnce() ABSL_LOCKS_EXCLUDED(mu_);
  // Logs the first failure (of a run of them) through `log_`.
  void Warn(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string events_dir_;
  const std::string snapshot_dir_;
  const std::chrono::milliseconds interval_;
  const Publish publish_;
  const Log log_;
  absl::Notification stop_;
  mutable absl::Mutex mu_;  // one upload at a time
  std::string last_sent_ ABSL_GUARDED_BY(mu_);  // sha256 of the last snapshot sent
  int uploads_ ABSL_GUARDED_BY(mu_) = 0;
  bool warned_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace bert::agent
