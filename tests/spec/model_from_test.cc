// model.from (warm start) in the job spec: a Hugging Face BERT directory fills
// the architecture and becomes the tokenizer; "job:<id>" is left for bertd to
// resolve; every conflicting or unloadable setting is an error naming its field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "spec/job_spec.h"

namespace bert::spec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"({
  "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_act": "gelu",
  "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256,
  "max_position_embeddings": 128, "type_vocab_size": 2, "vocab_size": 12,
  "hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.3, "layer_norm_eps": 1e-12,
  "pad_token_id": 0, "position_embedding_type": "absolute"
})";

class ModelFromTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bert_model_from_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
    std::ofstream(dir_ / "corpus.txt") << "some text\n";
    WriteModel(kConfig);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A model directory: config.json, a weights file (only its presence is
  // checked here) and a vocab.txt of 10 tokens.
  void WriteModel(const std::string& config) {
    std::ofstream(dir_ / "model" / "config.json", std::ios::trunc) << config;
    std::ofstream(dir_ / "model" / "model.safetensors") << "x";
    std::ofstream(dir_ / "model" / "vocab.txt", std::ios::trunc)
        << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nof\nand\na\ntext\n";
  }

  ParseResult Parse(const std::string& tail, bool check_paths = true) {
    ParseOptions options;
    options.base_dir = dir_.string();
    options.check_paths = check_paths;
    return ParseJobSpec(
        "name: t\ncorpus:\n  sources: [corpus.txt]\npreprocess:\n  max_seq_length: 64\n" + tail,
        options);
  }

  // The one error about `field`, or a failure.
  static std::string ErrorAbout(const ParseResult& r, const std::string& field) {
    for (const auto& e : r.errors) {
      if (e.field() == field) return e.message();
    }
    std::string all;
    for (const auto& e : r.errors) all += e.field() + ": " + e.message() + "\n";
    ADD_FAILURE() << "no error about " << field << "; errors:\n" << all;
    return "";
  }

  fs::path dir_;
};

bool Plans(const v1::JobSpec& spec, v1::StageKind kind) {
  const auto stages = PlannedStages(spec);
  return std::find(stages.begin(), stages.end(), kind) != stages.end();
}

TEST_F(ModelFromTest, ADirectoryGivesTheArchitectureAndTheTokenizer) {
  const ParseResult r = Parse("model:\n  from: model\n");
  ASSERT_TRUE(r.ok()) << FormatErrors("job.yaml", r.errors);
  const std::string model_dir = (dir_ / "model").string();
  EXPECT_EQ(r.spec.model().from(), model_dir);
  EXPECT_EQ(r.spec.model().preset(), "");
  EXPECT_EQ(r.spec.model().hidden_size(), 64);
  EXPECT_EQ(r.spec.model().num_hidden_layers(), 2);
  EXPECT_EQ(r.spec.model().intermediate_size(), 256);
  EXPECT_EQ(r.spec.model().max_position_embeddings(), 128);
  EXPECT_DOUBLE_EQ(r.spec.model().hidden_dropout_prob(), 0.2);
  EXPECT_DOUBLE_EQ(r.spec.model().attention_probs_dropout_prob(), 0.3);
  EXPECT_EQ(r.spec.tokenizer().from(), model_dir);
  EXPECT_EQ(r.spec.tokenizer().vocab_size(), 10);
  EXPECT_FALSE(Plans(r.spec, v1::TOKENIZER));
  EXPECT_TRUE(Plans(r.spec, v1::PREPARE));
  EXPECT_TRUE(Plans(r.spec, v1::PRETRAIN));
}

TEST_F(ModelFromTest, DropoutsMayBeSetAndTheModelsOwnTokenizerNamed) {
  const std::string vocab = (dir_ / "model" / "vocab.txt").string();
  const ParseResult r = Parse(
      "tokenizer:\n  from: model/vocab.txt\nmodel:\n  from: model\n  hidden_dropout_prob: 0\n");
  ASSERT_TRUE(r.ok()) << FormatErrors("job.yaml", r.errors);
  EXPECT_DOUBLE_EQ(r.spec.model().hidden_dropout_prob(), 0);
  EXPECT_DOUBLE_EQ(r.spec.model().attention_probs_dropout_prob(), 0.3);
  EXPECT_EQ(r.spec.tokenizer().from(), vocab);
}

TEST_F(ModelFromTest, AJobReferenceIsLeftToBertd) {
  for (const char* from : {"job:j-20261201-030000123-ab12", "job:j-1/checkpoint-500"}) {
    const ParseResult r =
        Parse(std::string("model:\n  from: ") + from + "\n", /*check_paths=*/false);
    ASSERT_TRUE(r.ok()) << from << "\n" << FormatErrors("job.yaml", r.errors);
    EXPECT_EQ(r.spec.model().from(), from);
    EXPECT_EQ(r.spec.model().hidden_size(), 0);  // bertd fills it from that job
    EXPECT_EQ(r.spec.tokenizer().from(), "");
    EXPECT_EQ(r.spec.tokenizer().vocab_size(), 0);  // nothing is trained
    EXPECT_FALSE(Plans(r.spec, v1::TOKENIZER));
  }
}

TEST_F(ModelFromTest, SizesPresetAndInitializationCannotBeSetWithIt) {
  const ParseResult r = Parse(
      "model:\n  from: model\n  preset: bert-tiny\n  hidden_size: 128\n  num_hidden_layers: 4\n"
      "  initialization: local-attention\n");
  ASSERT_FALSE(r.ok());
  for (const char* field : {"model.preset", "model.hidden_size", "model.num_hidden_layers",
                            "model.initialization"}) {
    EXPECT_THAT(ErrorAbout(r, field), HasSubstr("cannot be set with model.from"));
  }
}

TEST_F(ModelFromTest, TheTokenizerIsNotTrainedNorReplaced) {
  const ParseResult trained = Parse("tokenizer:\n  vocab_size: 500\nmodel:\n  from: model\n");
  EXPECT_THAT(ErrorAbout(trained, "tokenizer.vocab_size"),
              HasSubstr("keeps the model's tokenizer"));

  fs::create_directories(dir_ / "other");
  std::ofstream(dir_ / "other" / "vocab.txt") << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  const ParseResult other = Parse("tokenizer:\n  from: other\nmodel:\n  from: model\n");
  EXPECT_THAT(ErrorAbout(other, "tokenizer.from"), HasSubstr("is not model.from's tokenizer"));

  const ParseResult job =
      Parse("tokenizer:\n  from: other\nmodel:\n  from: job:j-1\n", /*check_paths=*/false);
  EXPECT_THAT(ErrorAbout(job, "tokenizer.from"), HasSubstr("that job's tokenizer is used"));
}

TEST_F(ModelFromTest, MalformedJobReferences) {
  for (const char* from :
       {"job:", "job:a/b", "job:a/checkpoint-", "job:a/checkpoint-x", "job:../x"}) {
    const ParseResult r = Parse(std::string("model:\n  from: \"") + from + "\"\n", false);
    EXPECT_THAT(ErrorAbout(r, "model.from"),
                HasSubstr("is not 'job:<id>' or 'job:<id>/checkpoint-<step>'"))
        << from;
  }
}

TEST_F(ModelFromTest, ADirectoryThatIsNotALoadableBertIsRefused) {
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: nowhere\n"), "model.from"),
              HasSubstr("does not exist"));
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: corpus.txt\n"), "model.from"),
              HasSubstr("is not a directory"));

  WriteModel(R"({"model_type": "gpt2", "vocab_size": 12, "hidden_size": 64})");
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: model\n"), "model.from"),
              HasSubstr("model_type: \"gpt2\" is not a BERT model"));

  std::string no_layers = kConfig;
  no_layers.replace(no_layers.find("\"num_hidden_layers\": 2,"), 23, "");
  WriteModel(no_layers);
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: model\n"), "model.from"),
              HasSubstr("config.json: num_hidden_layers: missing"));

  std::string relu = kConfig;
  relu.replace(relu.find("\"gelu\""), 6, "\"relu\"");
  WriteModel(relu);
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: model\n"), "model.from"),
              HasSubstr("hidden_act: \"relu\" is not supported"));

  std::string heads = kConfig;
  heads.replace(heads.find("\"num_attention_heads\": 2"), 24, "\"num_attention_heads\": 3");
  WriteModel(heads);
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: model\n"), "model.from"),
              HasSubstr("not a multiple of num_attention_heads"));

  WriteModel("not json");
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: model\n"), "model.from"),
              HasSubstr("not a JSON object"));

  WriteModel(kConfig);
  fs::remove(dir_ / "model" / "model.safetensors");
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: model\n"), "model.from"),
              HasSubstr("has no model.safetensors"));

  WriteModel(kConfig);
  fs::remove(dir_ / "model" / "vocab.txt");
  EXPECT_THAT(ErrorAbout(Parse("model:\n  from: model\n"), "model.from"),
              HasSubstr("neither vocab.txt nor tokenizer.json"));
}

TEST_F(ModelFromTest, TheTokenizerMustFitTheEmbeddingsAndTheBlocksThePositions) {
  std::string small = kConfig;
  small.replace(small.find("\"vocab_size\": 12"), 16, "\"vocab_size\": 8");
  WriteModel(small);
  EXPECT_THAT(
      ErrorAbout(Parse("model:\n  from: model\n"), "model.from"),
      HasSubstr("the tokenizer has 10 tokens but the model's config.json says vocab_size 8"));

  WriteModel(kConfig);
  ParseOptions options;
  options.base_dir = dir_.string();
  const ParseResult r = ParseJobSpec(
      "name: t\ncorpus:\n  sources: [corpus.txt]\npreprocess:\n  max_seq_length: 512\nmodel:\n  "
      "from: model\n",
      options);
  EXPECT_THAT(ErrorAbout(r, "preprocess.max_seq_length"),
              HasSubstr("exceeds the model's max_position_embeddings (128)"));
}

}  // namespace
}  // namespace bert::spec
