// The assignment builder alone: a placed piece in, the assignment its agent
// acquires out.
#include "server/assignment_builder.h"

#include "gtest/gtest.h"
#include "protocol/rendezvous.h"
#include "server/job_model.h"

namespace bert::server {
namespace {

v1::Job JobAtStage(v1::StageKind current, int shard_count) {
  v1::Job job;
  job.set_id("j-1");
  job.mutable_spec()->mutable_resources()->set_devices(2);
  for (v1::StageKind kind : protocol::PipelineStages()) {
    v1::Stage* stage = job.add_stages();
    stage->set_kind(kind);
    stage->set_shard_count(kind == current ? shard_count : 1);
    if (kind < current) {
      stage->set_state(v1::SUCCEEDED);
      v1::Artifact* out = stage->add_outputs();
      out->set_id("j-1/" + protocol::StageName(kind) + "/out");
      out->set_uri("bertd://j-1/" + protocol::StageName(kind) + "/out");
    }
  }
  return job;
}

v1::AgentInfo Agent(const std::string& id, const std::string& address, bool shared) {
  v1::AgentInfo info;
  info.set_id(id);
  info.set_address(address);
  info.set_hostname(id + ".local");
  info.set_shared_filesystem(shared);
  return info;
}

PlacementContext Context(const v1::AgentInfo* agent) {
  PlacementContext context;
  context.agent = agent;
  return context;
}

TEST(AssignmentBuilderTest, InputsAreEveryEarlierStagesOutputs) {
  const v1::Job job = JobAtStage(v1::PREPROCESS, 1);
  const v1::Stage& stage = *FindStage(job, v1::PREPROCESS);
  v1::ShardAttempt shard;
  shard.set_attempt(3);
  const v1::AgentInfo agent = Agent("a", "", false);
  AssignmentBuilder builder({"/srv/artifacts"});
  v1::Assignment a = builder.Build(job, stage, shard, Context(&agent));
  EXPECT_EQ(a.ref().job_id(), "j-1");
  EXPECT_EQ(a.ref().stage(), v1::PREPROCESS);
  EXPECT_EQ(a.ref().attempt(), 3);
  ASSERT_EQ(a.inputs_size(), 2);
  EXPECT_EQ(a.inputs(0).id(), "j-1/prepare/out");
  EXPECT_EQ(a.inputs(1).uri(), "bertd://j-1/tokenizer/out") << "no shared filesystem: fetched";
  EXPECT_TRUE(a.artifact_root().empty());
  EXPECT_FALSE(a.has_rendezvous());
}

TEST(AssignmentBuilderTest, ASharedFilesystemReadsTheArtifactRootDirectly) {
  const v1::Job job = JobAtStage(v1::PREPROCESS, 1);
  const v1::AgentInfo agent = Agent("a", "", true);
  AssignmentBuilder builder({"/srv/artifacts"});
  v1::Assignment a = builder.Build(job, *FindStage(job, v1::PREPROCESS), v1::ShardAttempt(),
                                   Context(&agent));
  EXPECT_EQ(a.inputs(0).uri(), "file:///srv/artifacts/j-1/prepare/out");
  EXPECT_EQ(a.artifact_root(), "/srv/artifacts");
}

TEST(AssignmentBuilderTest, AJoinPieceAlsoReadsItsShardsOutputs) {
  v1::Job job = JobAtStage(v1::PREPARE, 2);
  v1::Stage* stage = FindStage(&job, v1::PREPARE);
  for (int i = 0; i < 3; ++i) {
    v1::ShardAttempt* s = stage->add_shards();
    s->set_shard_index(i);
    if (i < 2) s->add_outputs()->set_id("j-1/prepare/shard-" + std::to_string(i) + "/parts");
  }
  const v1::AgentInfo agent = Agent("a", "", false);
  AssignmentBuilder builder({});
  v1::Assignment join = builder.Build(job, *stage, stage->shards(2), Context(&agent));
  ASSERT_EQ(join.inputs_size(), 2);
  EXPECT_EQ(join.inputs(1).id(), "j-1/prepare/shard-1/parts");
  v1::Assignment piece = builder.Build(job, *stage, stage->shards(0), Context(&agent));
  EXPECT_EQ(piece.inputs_size(), 0);
}

TEST(AssignmentBuilderTest, AGangMeetsAtItsMastersAddressWithOneRankPerDevice) {
  v1::Job job = JobAtStage(v1::PRETRAIN, 2);
  const v1::Stage& stage = *FindStage(job, v1::PRETRAIN);
  v1::ShardAttempt second;
  second.set_shard_index(1);
  second.set_attempt(1);
  const v1::AgentInfo master = Agent("m", "10.1.0.1", false), other = Agent("o", "", false);
  PlacementContext context = Context(&other);
  context.gang_master = &master;
  context.gang_size = 2;
  v1::Artifact checkpoint;
  checkpoint.set_id("j-1/pretrain/checkpoint-100");
  context.resume_checkpoints.push_back(checkpoint);
  AssignmentBuilder builder({""});
  v1::Assignment a = builder.Build(job, stage, second, context);
  ASSERT_TRUE(a.has_rendezvous());
  EXPECT_EQ(a.rendezvous().master_address(), "10.1.0.1");
  EXPECT_EQ(a.rendezvous().world_size(), 4);
  EXPECT_EQ(a.rendezvous().node_rank(), 1);
  EXPECT_EQ(a.rendezvous().local_world_size(), 2);
  // The port is node 0's to choose on its host, for every attempt.
  EXPECT_EQ(a.rendezvous().master_port(), protocol::kPortChosenByMaster);
  second.set_attempt(2);
  EXPECT_EQ(builder.Build(job, stage, second, context).rendezvous().master_port(),
            protocol::kPortChosenByMaster);
  EXPECT_EQ(a.inputs(a.inputs_size() - 1).id(), "j-1/pretrain/checkpoint-100");
  // Without an address, a multi-host gang uses the master's hostname.
  const v1::AgentInfo unnamed = Agent("m", "", false);
  context.gang_master = &unnamed;
  EXPECT_EQ(builder.Build(job, stage, second, context).rendezvous().master_address(), "m.local");
}

}  // namespace
}  // namespace bert::server
