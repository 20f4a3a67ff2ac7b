// TensorBoardPublisher: the event directory reaches `publish` while it is
// written (each changed snapshot once, an unchanged one not again), and once
// more at Finish; a failed upload is logged once and retried.
#include "agent/tensorboard_publisher.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "protocol/artifact_manifest.h"
#include "tests/testing/temp_dir.h"

namespace bert::agent {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

void Append(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::app | std::ios::binary);
  out << text;
}

struct Sent {
  absl::Mutex mu;
  std::vector<std::string> sha256;  // of each directory published
  int failures_left = 0;
};

TEST(TensorBoardPublisherTest, UploadsChangedSnapshotsWhileWrittenAndAtFinish) {
  bert::testing::TempDir temp("tb_publisher_");
  const fs::path events = temp.path() / "runs";
  Sent sent;
  std::vector<std::string> logs;
  TensorBoardPublisher publisher(
      events.string(), (temp.path() / "tensorboard").string(), milliseconds(20),
      [&](const std::string& path) -> absl::Status {
        auto described = protocol::DescribeLocalArtifact(path);
        if (!described.ok()) return described.status();
        absl::MutexLock lock(&sent.mu);
        if (sent.failures_left > 0) {
          --sent.failures_left;
          return absl::UnavailableError("bertd went away");
        }
        sent.sha256.push_back(described->sha256);
        return absl::OkStatus();
      },
      [&](const std::string& message) { logs.push_back(message); });
  auto wait_for = [&](size_t n) {
    for (int i = 0; i < 500; ++i) {
      {
        absl::MutexLock lock(&sent.mu);
        if (sent.sha256.size() >= n) return true;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  };
  // Nothing is sent before the worker writes its first event file.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(publisher.uploads(), 0);
  fs::create_directories(events);
  Append(events / "events.out.tfevents.1.host", "first record");
  ASSERT_TRUE(wait_for(1));
  // Unchanged: not sent again.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(publisher.uploads(), 1);
  // Appended to, with a failure on the way: logged, then retried.
  {
    absl::MutexLock lock(&sent.mu);
    sent.failures_left = 1;
  }
  Append(events / "events.out.tfevents.1.host", " second record");
  ASSERT_TRUE(wait_for(2));
  EXPECT_EQ(publisher.uploads(), 2);
  Append(events / "events.out.tfevents.1.host", " last record");
  publisher.Finish();
  ASSERT_TRUE(wait_for(3));
  auto final_events = protocol::DescribeLocalArtifact(events.string());
  ASSERT_TRUE(final_events.ok());
  absl::MutexLock lock(&sent.mu);
  EXPECT_EQ(sent.sha256.back(), final_events->sha256);  // the last snapshot is what was written
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("bertd went away"), std::string::npos) << logs[0];
}

}  // namespace
}  // namespace bert::agent
