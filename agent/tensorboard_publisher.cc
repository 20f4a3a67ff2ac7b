#include "agent/tensorboard_publisher.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "protocol/artifact_manifest.h"

namespace bert::agent {
namespace fs = std::filesystem;

TensorBoardPublisher::TensorBoardPublisher(std::string events_dir, std::string snapshot_dir,
                                           std::chrono::milliseconds interval, Publish publish,
                                           Log log)
    : events_dir_(std::move(events_dir)),
      snapshot_dir_(std::move(snapshot_dir)),
      interval_(interval),
      publish_(std::move(publish)),
      log_(std::move(log)) {
  thread_ = std::thread([this] { Loop(); });
}

TensorBoardPublisher::~TensorBoardPublisher() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void TensorBoardPublisher::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(absl::FromChrono(interval_))) PublishOnce();
}

void TensorBoardPublisher::Finish() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  PublishOnce();
}

int TensorBoardPublisher::uploads() const {
  absl::MutexLock lock(&mu_);
  return uploads_;
}

void TensorBoardPublisher::Warn(const std::string& why) {
  if (!warned_) log_(absl::StrCat("TensorBoard logs not uploaded (retried): ", why));
  warned_ = true;
}

void TensorBoardPublisher::PublishOnce() {
  absl::MutexLock lock(&mu_);
  std::error_code ec;
  if (!fs::is_directory(events_dir_, ec) || fs::is_empty(events_dir_, ec)) return;
  // A copy of the files as they are now: the worker appends whole records
  // (and flushes after each), so a snapshot ends at most mid-record, which
  // TensorBoard's reader waits out.
  const std::string next = snapshot_dir_ + ".next";
  fs::remove_all(next, ec);
  fs::copy(events_dir_, next, fs::copy_options::recursive, ec);
  if (ec) return Warn(absl::StrCat("copy ", events_dir_, ": ", ec.message()));
  auto described = protocol::DescribeLocalArtifact(next);
  if (!described.ok()) return Warn(std::string(described.status().message()));
  if (described->sha256 == last_sent_) {
    fs::remove_all(next, ec);
    return;
  }
  fs::remove_all(snapshot_dir_, ec);
  fs::rename(next, snapshot_dir_, ec);
  if (ec) return Warn(absl::StrCat("rename ", next, ": ", ec.message()));
  if (absl::Status sent = publish_(snapshot_dir_); !sent.ok()) {
    return Warn(std::string(sent.message()));
  }
  last_sent_ = described->sha256;
  ++uploads_;
}

}  // namespace bert::agent
