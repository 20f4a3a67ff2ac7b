// The assignment builder alone: a placed piece in, the assignment its agent
// acquires out.
#include "server/assignment_builder.h"

#include "gtest/gtest.h"
#include "protocol/output_dir.h"
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
  AssignmentBuilder builder({"/srv/artifacts", ""});
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
  AssignmentBuilder builder({"/srv/artifacts", ""});
  v1::Assignment a = builder.Build(job, *FindStage(job, v1::PREPROCESS), v1::ShardAttempt(),
                                   Context(&agent));
  EXPECT_EQ(a.inputs(0).uri(), "file:///srv/artifacts/j-1/prepare/out");
  EXPECT_EQ(a.artifact_root(), "/srv/artifacts");
}

// output.dir is the submitter's unless it lies under the shared output root:
// only then does the export agent see it (protocol/output_dir.h).
TEST(AssignmentBuilderTest, OutputDirReachesTheExportOnlyUnderTheSharedOutputRoot) {
  v1::Job job = JobAtStage(v1::EXPORT, 1);
  const v1::AgentInfo agent = Agent("a", "", false);
  const v1::Stage& stage = *FindStage(job, v1::EXPORT);
  const auto output_dir = [&](const std::string& dir, const std::string& root) {
    job.mutable_spec()->mutable_output()->set_dir(dir);
    AssignmentBuilder builder({"/srv/artifacts", root});
    return builder.Build(job, stage, v1::ShardAttempt(), Context(&agent)).spec().output().dir();
  };
  EXPECT_EQ(output_dir("/home/u/model", ""), "") << "no shared root: bertctl pulls it";
  EXPECT_EQ(output_dir("/home/u/model", "/shared/models"), "");
  EXPECT_EQ(output_dir("/shared/models/u/run1", "/shared/models"), "/shared/models/u/run1");
  EXPECT_EQ(output_dir("/shared/models", "/shared/models/"), "/shared/models");
  EXPECT_EQ(output_dir("/shared/models-2/run1", "/shared/models"), "") << "a sibling, not under";
  EXPECT_EQ(output_dir("/shared/models/../x", "/shared/models"), "") << "'..' resolved first";
  EXPECT_FALSE(protocol::ExportWritesOutputDir("relative/dir", "/shared"));
  EXPECT_FALSE(protocol::ExportWritesOutputDir("", "/shared"));
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
  AssignmentBuilder builder({"", ""});
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

// Uploaded corpus files (Job.input_files) go to the pieces that read the
// corpus, PREPARE's (not its join, not later stages), once per content, as
// the controller's copy: fetched, or read from the artifact root on a shared
// filesystem.
TEST(AssignmentBuilderTest, UploadedInputsGoToThePreparePiecesOnly) {
  v1::Job job = JobAtStage(v1::PREPARE, 2);
  for (const char* sha : {"aa", "bb", "aa"}) {  // the same content twice: one input
    v1::InputFile* f = job.add_input_files();
    f->set_path(std::string("/laptop/") + sha + ".txt");
    f->set_sha256(std::string(64, sha[0]));
    f->set_size_bytes(7);
  }
  const v1::Stage& prepare = *FindStage(job, v1::PREPARE);
  const v1::AgentInfo agent = Agent("a", "", false);
  const v1::AgentInfo shared = Agent("s", "", true);
  AssignmentBuilder builder({"/srv/artifacts", ""});
  v1::ShardAttempt piece;
  piece.set_shard_index(1);
  v1::Assignment a = builder.Build(job, prepare, piece, Context(&agent));
  ASSERT_EQ(a.inputs_size(), 2);
  EXPECT_EQ(a.inputs(0).id(), "inputs/" + std::string(64, 'a'));
  EXPECT_EQ(a.inputs(0).uri(), "bertd://inputs/" + std::string(64, 'a'));
  EXPECT_EQ(a.inputs(0).sha256(), std::string(64, 'a'));
  EXPECT_EQ(a.inputs(0).size_bytes(), 7);
  EXPECT_EQ(a.input_files_size(), 3);
  a = builder.Build(job, prepare, piece, Context(&shared));
  EXPECT_EQ(a.inputs(1).uri(), "file:///srv/artifacts/inputs/" + std::string(64, 'b'));

  v1::ShardAttempt join;
  join.set_shard_index(2);
  a = builder.Build(job, prepare, join, Context(&agent));
  EXPECT_EQ(a.inputs_size(), 0);
  EXPECT_EQ(a.input_files_size(), 0);

  job = JobAtStage(v1::TOKENIZER, 1);
  *job.add_input_files() = v1::InputFile();
  a = builder.Build(job, *FindStage(job, v1::TOKENIZER), v1::ShardAttempt(), Context(&agent));
  EXPECT_EQ(a.inputs_size(), 1);  // the prepared corpus only
  EXPECT_EQ(a.input_files_size(), 0);
}

}  // namespace
}  // namespace bert::server
