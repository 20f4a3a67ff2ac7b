// The controller's rendezvous board: node 0 of a gang publishes the port it
// chose, the members of the same attempt get it; other attempts, other
// pieces and bad ports are refused or not confused.
#include "server/rendezvous_board.h"

#include <thread>

#include "gtest/gtest.h"

namespace bert::server {
namespace {

v1::AssignmentRef Ref(const std::string& job, int node, int attempt,
                      v1::StageKind stage = v1::PRETRAIN) {
  v1::AssignmentRef ref;
  ref.set_job_id(job);
  ref.set_stage(stage);
  ref.set_shard_index(node);
  ref.set_attempt(attempt);
  return ref;
}

TEST(RendezvousBoardTest, MembersGetThePortOfTheirAttempt) {
  RendezvousBoard board;
  EXPECT_EQ(board.Await(Ref("j", 1, 1), absl::ZeroDuration()), 0);
  ASSERT_TRUE(board.Publish(Ref("j", 0, 1), 41000).ok());
  EXPECT_EQ(board.Await(Ref("j", 1, 1), absl::ZeroDuration()), 41000);
  EXPECT_EQ(board.Await(Ref("j", 1, 2), absl::ZeroDuration()), 0) << "the next attempt's port is new";
  EXPECT_EQ(board.Await(Ref("k", 1, 1), absl::ZeroDuration()), 0) << "another job";
  ASSERT_TRUE(board.Publish(Ref("j", 0, 2), 42000).ok());
  EXPECT_EQ(board.Await(Ref("j", 1, 2), absl::ZeroDuration()), 42000);
  // A late publish of an older attempt changes nothing.
  ASSERT_TRUE(board.Publish(Ref("j", 0, 1), 43000).ok());
  EXPECT_EQ(board.Await(Ref("j", 1, 2), absl::ZeroDuration()), 42000);
}

TEST(RendezvousBoardTest, AWaitingMemberWakesWhenNodeZeroPublishes) {
  RendezvousBoard board;
  std::thread master([&] {
    absl::SleepFor(absl::Milliseconds(200));
    ASSERT_TRUE(board.Publish(Ref("j", 0, 1), 41001).ok());
  });
  const absl::Time start = absl::Now();
  EXPECT_EQ(board.Await(Ref("j", 1, 1), absl::Seconds(20)), 41001);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  master.join();
}

TEST(RendezvousBoardTest, OnlyNodeZeroOfPretrainPublishesARealPort) {
  RendezvousBoard board;
  EXPECT_EQ(board.Publish(Ref("j", 1, 1), 41000).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(board.Publish(Ref("j", 0, 1, v1::PREPARE), 41000).code(),
            absl::StatusCode::kInvalidArgument);
  for (int bad : {0, -5, 70000}) {
    absl::Status s = board.Publish(Ref("j", 0, 1), bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::to_string(bad)), std::string::npos) << s;
  }
  EXPECT_EQ(board.Await(Ref("j", 1, 1), absl::ZeroDuration()), 0);
}

}  // namespace
}  // namespace bert::server
