// The RocksDB store: round trips, ordering, atomic batches, durability across
// reopen, and refusal of an unknown schema.
#include "storage/store.h"

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/keys.h"

namespace bert::storage {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("store_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> OpenStore() {
    auto store = Store::Open(dir_.string());
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(store).value();
  }

  std::filesystem::path dir_;
};

v1::Event MetricEvent(const std::string& job, int64_t seq, const std::string& name, double value) {
  v1::Event e;
  e.set_job_id(job);
  e.set_seq(seq);
  e.mutable_metric()->set_name(name);
  e.mutable_metric()->set_value(value);
  e.mutable_metric()->set_step(seq);
  return e;
}

TEST_F(StoreTest, JobAndEventsRoundTripAndSurviveReopen) {
  {
    auto store = OpenStore();
    StoreBatch batch;
    v1::Job job;
    job.set_id("j-1");
    job.set_name("first");
    job.set_state(v1::RUNNING);
    batch.PutJob(job);
    for (int seq = 1; seq <= 12; ++seq) batch.PutEvent(MetricEvent("j-1", seq, "train/loss", 10.0 - seq));
    batch.PutEvent(MetricEvent("j-10", 1, "train/loss", 1));  // a job id that shares a prefix
    ASSERT_TRUE(store->Write(batch).ok());
  }
  auto store = OpenStore();
  auto job = store->GetJob("j-1");
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(job->has_value());
  EXPECT_EQ((*job)->name(), "first");
  EXPECT_EQ((*job)->state(), v1::RUNNING);

  auto events = store->ListEvents("j-1", 0, 1000);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 12u);  // j-10's event is not j-1's
  for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].seq(), static_cast<int64_t>(i + 1));

  auto after = store->ListEvents("j-1", 9, 2);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].seq(), 10);
  EXPECT_EQ((*after)[1].seq(), 11);

  auto metrics = store->ListMetrics("j-1", {"train/loss"});
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->size(), 12u);
  auto none = store->ListMetrics("j-1", {"train/lo"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto missing = store->GetJob("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(StoreTest, CheckpointsAgentsArtifactsAndIdempotencyKeys) {
  auto store = OpenStore();
  StoreBatch batch;
  for (int64_t step : {1000, 500, 1500}) {
    v1::CheckpointRecord record;
    record.set_job_id("j-2");
    record.set_step(step);
    batch.PutCheckpoint(record);
  }
  v1::AgentInfo agent;
  agent.set_id("agent-a");
  agent.add_pools("cpu");
  batch.PutAgent(agent);
  v1::Artifact artifact;
  artifact.set_id("j-2/tokenizer/tokenizer");
  artifact.set_sha256("ab");
  batch.PutArtifact(artifact);
  batch.PutIdempotencyKey("alice", "key-1", "j-2");
  EXPECT_EQ(batch.count(), 6);
  ASSERT_TRUE(store->Write(batch).ok());

  auto checkpoints = store->ListCheckpoints("j-2");
  ASSERT_TRUE(checkpoints.ok());
  ASSERT_EQ(checkpoints->size(), 3u);
  EXPECT_EQ((*checkpoints)[0].step(), 500);  // numeric order, not text order
  EXPECT_EQ((*checkpoints)[2].step(), 1500);

  auto agents = store->ListAgents();
  ASSERT_TRUE(agents.ok());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].pools(0), "cpu");

  auto found = store->GetArtifact("j-2/tokenizer/tokenizer");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->sha256(), "ab");

  auto key = store->FindIdempotencyKey("alice", "key-1");
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(key->has_value());
  EXPECT_EQ(**key, "j-2");
  auto other_subject = store->FindIdempotencyKey("bob", "key-1");
  ASSERT_TRUE(other_subject.ok());
  EXPECT_FALSE(other_subject->has_value());
}

TEST_F(StoreTest, ForEachJobVisitsAllInIdOrderAndStopsEarly) {
  auto store = OpenStore();
  StoreBatch batch;
  for (const char* id : {"j-b", "j-a", "j-c"}) {
    v1::Job job;
    job.set_id(id);
    batch.PutJob(job);
  }
  ASSERT_TRUE(store->Write(batch).ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(store->ForEachJob([&](const v1::Job& j) {
                     seen.push_back(j.id());
                     return true;
                   }).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"j-a", "j-b", "j-c"}));
  seen.clear();
  ASSERT_TRUE(store->ForEachJob([&](const v1::Job& j) {
                     seen.push_back(j.id());
                     return false;
                   }).ok());
  EXPECT_EQ(seen.size(), 1u);
}

TEST_F(StoreTest, RefusesAnotherSchemaVersion) {
  OpenStore().reset();
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), std::string(keys::kSchemaVersion), "99").ok());
  }
  auto store = Store::Open(dir_.string());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("99"), std::string::npos);
}

TEST_F(StoreTest, CorruptValueIsDataLossNotACrash) {
  OpenStore().reset();
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), keys::Job("j-x"), std::string("\xff\xff\xff", 3)).ok());
  }
  auto store = OpenStore();
  auto job = store->GetJob("j-x");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(job.status().message().find("job/j-x"), std::string::npos);
}

}  // namespace
}  // namespace bert::storage
