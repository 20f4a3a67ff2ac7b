#include "protocol/artifact_ids.h"

#include <gtest/gtest.h>

namespace bert::protocol {
namespace {

v1::AssignmentRef Ref(v1::StageKind stage, int shard) {
  v1::AssignmentRef ref;
  ref.set_job_id("job-7");
  ref.set_stage(stage);
  ref.set_shard_index(shard);
  ref.set_attempt(2);
  return ref;
}

TEST(ArtifactIdsTest, Forms) {
  EXPECT_EQ(StageArtifactId("job-7", v1::TOKENIZER, kTokenizerArtifact),
            "job-7/tokenizer/tokenizer");
  EXPECT_EQ(PieceArtifactId("job-7", v1::PREPARE, 3, "parts-00003"),
            "job-7/prepare/shard-3/parts-00003");
  EXPECT_EQ(CheckpointArtifactId("job-7", "checkpoint-1000"), "job-7/pretrain/checkpoint-1000");
  EXPECT_EQ(CheckpointArtifactId("job-7", int64_t{1000}), "job-7/pretrain/checkpoint-1000");
  EXPECT_EQ(CheckpointArtifactName(20), "checkpoint-20");
  EXPECT_EQ(ShardDirName(12), "shard-12");
  EXPECT_EQ(PartsArtifactName(3), "parts-00003");
  EXPECT_EQ(PartsArtifactName(123456), "parts-123456");
  EXPECT_TRUE(IsPartsArtifactName(PartsArtifactName(0)));
  EXPECT_FALSE(IsPartsArtifactName(kDatasetArtifact));
}

TEST(ArtifactIdsTest, OnlyFannedOutPiecesGetAShardPart) {
  // Piece 1 of 3 of PREPARE: a piece.
  EXPECT_EQ(OutputArtifactId(Ref(v1::PREPARE, 1), 3, "parts-00001"),
            "job-7/prepare/shard-1/parts-00001");
  // The join (shard_index == shard_count) and a single piece: the stage's output.
  EXPECT_EQ(OutputArtifactId(Ref(v1::PREPARE, 3), 3, "corpus"), "job-7/prepare/corpus");
  EXPECT_EQ(OutputArtifactId(Ref(v1::PREPROCESS, 0), 1, "dataset"), "job-7/preprocess/dataset");
  // A gang's ranks are not pieces.
  EXPECT_EQ(OutputArtifactId(Ref(v1::PRETRAIN, 1), 2, "checkpoint-5"),
            "job-7/pretrain/checkpoint-5");
}

TEST(ArtifactIdsTest, ParseRoundTrips) {
  auto whole = ParseArtifactId(StageArtifactId("j", v1::EXPORT, kModelArtifact));
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(whole->job_id, "j");
  EXPECT_EQ(whole->stage, v1::EXPORT);
  EXPECT_EQ(whole->shard_index, -1);
  EXPECT_EQ(whole->name, "model");

  auto piece = ParseArtifactId(PieceArtifactId("j", v1::PREPROCESS, 4, PartsArtifactName(4)));
  ASSERT_TRUE(piece.has_value());
  EXPECT_EQ(piece->stage, v1::PREPROCESS);
  EXPECT_EQ(piece->shard_index, 4);
  EXPECT_EQ(piece->name, "parts-00004");
  EXPECT_EQ(PieceArtifactId(piece->job_id, piece->stage, piece->shard_index, piece->name),
            "j/preprocess/shard-4/parts-00004");

  auto checkpoint = ParseArtifactId(CheckpointArtifactId("j", int64_t{20}));
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->stage, v1::PRETRAIN);
  EXPECT_EQ(checkpoint->name, "checkpoint-20");
}

TEST(ArtifactIdsTest, ParseRejectsOtherShapes) {
  for (const char* bad : {"", "j", "j/prepare", "/prepare/x", "j/prepare/", "j/PREPARE/x",
                          "j/unknown/x", "j/prepare/shard-/x", "j/prepare/shard-01/x",
                          "j/prepare/shard--1/x", "j/prepare/piece-1/x", "j/prepare/shard-1/x/y"}) {
    EXPECT_FALSE(ParseArtifactId(bad).has_value()) << bad;
  }
}

TEST(ArtifactIdsTest, InputIdsAreContentAddressedAndNoJobsArtifacts) {
  const std::string sha(64, 'a');
  EXPECT_EQ(InputArtifactId(sha), "inputs/" + sha);
  EXPECT_EQ(ParseInputArtifactId("inputs/" + sha), sha);
  EXPECT_FALSE(ParseArtifactId(InputArtifactId(sha)).has_value());
  for (const std::string& bad : {std::string("inputs/") + std::string(63, 'a'),
                                 std::string("inputs/") + std::string(64, 'A'),
                                 std::string("inputs/") + std::string(64, 'g'),
                                 std::string("inputs/") + sha + "/x", std::string("input/") + sha,
                                 std::string("j-1/prepare/corpus")}) {
    EXPECT_FALSE(ParseInputArtifactId(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace bert::protocol
