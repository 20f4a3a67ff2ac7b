// ResolveRendezvous against a fake bertd side: node 0 picks a port that is
// free here and publishes it only for a gang across hosts; the other nodes
// take the published one; a port bertd set is left alone; waiting ends on
// cancellation or the timeout, and transient errors are retried.
#include "agent/gang_rendezvous.h"

#include <atomic>
#include <deque>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "protocol/failure_cause.h"
#include "protocol/rendezvous.h"

namespace bert::agent {
namespace {

class FakeChannel : public RendezvousChannel {
 public:
  absl::Status Publish(const v1::AssignmentRef& ref, int port) override {
    absl::MutexLock lock(&mu_);
    if (!publish_errors.empty()) {
      absl::Status s = publish_errors.front();
      publish_errors.pop_front();
      return s;
    }
    published[ref.attempt()] = port;
    return absl::OkStatus();
  }
  absl::StatusOr<int> Await(const v1::AssignmentRef& ref, absl::Duration wait) override {
    absl::MutexLock lock(&mu_);
    ++awaits;
    if (!await_errors.empty()) {
      absl::Status s = await_errors.front();
      await_errors.pop_front();
      return s;
    }
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return published.contains(ref.attempt()); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
    auto it = published.find(ref.attempt());
    return it == published.end() ? 0 : it->second;
  }

  absl::Mutex mu_;
  std::map<int, int> published ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> publish_errors ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> await_errors ABSL_GUARDED_BY(mu_);
  int awaits ABSL_GUARDED_BY(mu_) = 0;
};

v1::AssignmentRef Ref(int node, int attempt) {
  v1::AssignmentRef ref;
  ref.set_job_id("j-1");
  ref.set_stage(v1::PRETRAIN);
  ref.set_shard_index(node);
  ref.set_attempt(attempt);
  return ref;
}

v1::Rendezvous Gang(int node, int hosts, int local) {
  v1::Rendezvous rv;
  rv.set_master_address("10.0.0.1");
  rv.set_master_port(protocol::kPortChosenByMaster);
  rv.set_world_size(hosts * local);
  rv.set_local_world_size(local);
  rv.set_node_rank(node);
  return rv;
}

const auto kNever = [] { return false; };

TEST(GangRendezvousTest, NodeZeroPicksAFreePortAndTheOthersGetIt) {
  FakeChannel channel;
  absl::StatusOr<v1::Rendezvous> member;
  std::thread other([&] {
    member = ResolveRendezvous(Ref(1, 3), Gang(1, 2, 1), &channel, kNever, absl::Seconds(20));
  });
  absl::StatusOr<v1::Rendezvous> master =
      ResolveRendezvous(Ref(0, 3), Gang(0, 2, 1), &channel, kNever, absl::Seconds(20));
  other.join();
  ASSERT_TRUE(master.ok()) << master.status();
  ASSERT_TRUE(member.ok()) << member.status();
  EXPECT_TRUE(protocol::CheckRendezvousPort(master->master_port()).ok());
  EXPECT_EQ(member->master_port(), master->master_port());
  EXPECT_EQ(member->master_address(), "10.0.0.1");
  absl::MutexLock lock(&channel.mu_);
  EXPECT_EQ(channel.published.at(3), master->master_port());
}

TEST(GangRendezvousTest, AGangOnOneHostPublishesNothingAndNeedsNoController) {
  FakeChannel channel;
  absl::StatusOr<v1::Rendezvous> rv =
      ResolveRendezvous(Ref(0, 1), Gang(0, 1, 4), &channel, kNever, absl::Seconds(5));
  ASSERT_TRUE(rv.ok()) << rv.status();
  EXPECT_NE(rv->master_port(), protocol::kPortChosenByMaster);
  absl::MutexLock lock(&channel.mu_);
  EXPECT_TRUE(channel.published.empty());
  rv = ResolveRendezvous(Ref(0, 1), Gang(0, 1, 4), nullptr, kNever, absl::Seconds(5));
  EXPECT_TRUE(rv.ok()) << rv.status();
}

TEST(GangRendezvousTest, APortBertdSetIsKept) {
  v1::Rendezvous given = Gang(1, 2, 1);
  given.set_master_port(29999);
  absl::StatusOr<v1::Rendezvous> rv =
      ResolveRendezvous(Ref(1, 1), given, nullptr, kNever, absl::Seconds(1));
  ASSERT_TRUE(rv.ok()) << rv.status();
  EXPECT_EQ(rv->master_port(), 29999);
}

TEST(GangRendezvousTest, TransientErrorsAreRetried) {
  FakeChannel channel;
  {
    absl::MutexLock lock(&channel.mu_);
    channel.publish_errors.push_back(absl::UnavailableError("bertd restarting"));
    channel.await_errors.push_back(absl::UnavailableError("bertd restarting"));
  }
  absl::StatusOr<v1::Rendezvous> master =
      ResolveRendezvous(Ref(0, 2), Gang(0, 2, 1), &channel, kNever, absl::Seconds(20));
  ASSERT_TRUE(master.ok()) << master.status();
  absl::StatusOr<v1::Rendezvous> member =
      ResolveRendezvous(Ref(1, 2), Gang(1, 2, 1), &channel, kNever, absl::Seconds(20));
  ASSERT_TRUE(member.ok()) << member.status();
  EXPECT_EQ(member->master_port(), master->master_port());
}

TEST(GangRendezvousTest, AnotherAttemptsPortIsNotTaken) {
  FakeChannel channel;
  ASSERT_TRUE(ResolveRendezvous(Ref(0, 1), Gang(0, 2, 1), &channel, kNever, absl::Seconds(5)).ok());
  absl::StatusOr<v1::Rendezvous> member =
      ResolveRendezvous(Ref(1, 2), Gang(1, 2, 1), &channel, kNever, absl::Seconds(1));
  ASSERT_FALSE(member.ok());
  EXPECT_EQ(protocol::CauseOf(member.status()), v1::INTERNAL);
  EXPECT_NE(member.status().message().find("node 0 published no port"), std::string::npos)
      << member.status();
}

TEST(GangRendezvousTest, CancellationEndsTheWait) {
  FakeChannel channel;
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(300));
    cancel = true;
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::Rendezvous> member = ResolveRendezvous(
      Ref(1, 1), Gang(1, 2, 1), &channel, [&] { return cancel.load(); }, absl::Seconds(60));
  canceller.join();
  ASSERT_FALSE(member.ok());
  EXPECT_EQ(protocol::CauseOf(member.status()), v1::CANCELLED_BY_USER);
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
}

TEST(GangRendezvousTest, RefusalsAreNotRetried) {
  FakeChannel channel;
  {
    absl::MutexLock lock(&channel.mu_);
    channel.await_errors.push_back(absl::FailedPreconditionError("attempt 1 is not live"));
  }
  absl::StatusOr<v1::Rendezvous> member =
      ResolveRendezvous(Ref(1, 1), Gang(1, 2, 1), &channel, kNever, absl::Seconds(30));
  ASSERT_FALSE(member.ok());
  EXPECT_NE(member.status().message().find("not live"), std::string::npos) << member.status();
  absl::MutexLock lock(&channel.mu_);
  EXPECT_EQ(channel.awaits, 1);
}

}  // namespace
}  // namespace bert::agent
