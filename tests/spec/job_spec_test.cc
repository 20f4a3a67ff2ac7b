// ParseJobSpec over valid specs (defaults, presets, paths) and many bad ones;
// every bad spec asserts the field path, the line:column and the message.
#include "spec/job_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace bert::spec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string SourceDir() {
  const char* dir = std::getenv("BERT_SOURCE_DIR");
  return dir != nullptr ? dir : BERT_TEST_SOURCE_DIR;
}

std::string TestData() { return SourceDir() + "/tests/spec/testdata"; }

ParseResult Parse(const std::string& yaml, bool check_paths = true) {
  ParseOptions options;
  options.base_dir = TestData();
  options.check_paths = check_paths;
  return ParseJobSpec(yaml, options);
}

std::string Dump(const ParseResult& result) { return FormatErrors("job.yaml", result.errors); }

// Lines 1-3; what a case appends starts on line 4.
constexpr char kHead[] = "name: t\ncorpus:\n  sources: [corpus.txt]\n";

TEST(JobSpecTest, MinimalSpecGetsTheArticleDefaults) {
  const ParseResult result = Parse(kHead);
  ASSERT_TRUE(result.ok()) << Dump(result);
  const bert::v1::JobSpec& spec = result.spec;
  EXPECT_EQ(spec.name(), "t");
  ASSERT_EQ(spec.corpus().sources_size(), 1);
  EXPECT_EQ(spec.corpus().sources(0).paths(0), TestData() + "/corpus.txt");
  EXPECT_EQ(spec.corpus().sources(0).format(), "text");
  EXPECT_EQ(spec.corpus().sources(0).compression(), "auto");
  EXPECT_EQ(spec.corpus().sources(0).document_separator(), "line");
  EXPECT_TRUE(spec.corpus().drop_empty());
  EXPECT_EQ(spec.tokenizer().vocab_size(), 32000);
  EXPECT_TRUE(spec.tokenizer().lowercase());
  EXPECT_THAT(spec.tokenizer().special_tokens(),
              ::testing::ElementsAre("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"));
  EXPECT_EQ(spec.preprocess().max_seq_length(), 512);
  EXPECT_EQ(spec.preprocess().shuffle_seed(), 34u);
  EXPECT_DOUBLE_EQ(spec.preprocess().validation_fraction(), 0.01);
  EXPECT_EQ(spec.model().preset(), "bert-base-uncased");
  EXPECT_EQ(spec.model().hidden_size(), 768);
  EXPECT_EQ(spec.model().num_hidden_layers(), 12);
  EXPECT_EQ(spec.model().num_attention_heads(), 12);
  EXPECT_EQ(spec.model().intermediate_size(), 3072);
  EXPECT_EQ(spec.model().max_position_embeddings(), 512);
  EXPECT_EQ(spec.training().max_steps(), 100000);
  EXPECT_EQ(spec.training().per_device_batch_size(), 32);
  EXPECT_DOUBLE_EQ(spec.training().learning_rate(), 5e-5);
  EXPECT_EQ(spec.training().gradient_accumulation_steps(), 1);
  EXPECT_DOUBLE_EQ(spec.training().mlm_probability(), 0.15);
  EXPECT_EQ(spec.training().precision(), "fp32");
  EXPECT_EQ(spec.training().save_steps(), 500);
  EXPECT_EQ(spec.training().eval_steps(), 500);
  EXPECT_EQ(spec.training().seed(), 42u);
  EXPECT_EQ(spec.resources().accelerator(), "cpu");
  EXPECT_EQ(spec.resources().devices(), 1);
  EXPECT_EQ(spec.resources().max_attempts(), 3);
  EXPECT_THAT(PlannedStages(spec),
              ::testing::ElementsAre(bert::v1::PREPARE, bert::v1::TOKENIZER, bert::v1::PREPROCESS,
                                     bert::v1::PRETRAIN, bert::v1::EXPORT));
}

TEST(JobSpecTest, ExplicitValuesPresetsAndShorthands) {
  const ParseResult result = Parse(std::string(kHead) +
                                   "tokenizer:\n  vocab_size: 8_000\n  lowercase: false\n"
                                   "preprocess:\n  max_seq_length: 128\n  shuffle_seed: 0\n"
                                   "  validation_fraction: 0\n"
                                   "model:\n  preset: bert-tiny\n  num_hidden_layers: 3\n"
                                   "training:\n  max_steps: 1e3\n  learning_rate: 1e-4\n"
                                   "  precision: bf16\n  seed: 0\n"
                                   "resources:\n  accelerator: hpu\n  devices: 8\n"
                                   "output:\n  dir: out/model/\n"
                                   "labels:\n  team: nlp\n");
  ASSERT_TRUE(result.ok()) << Dump(result);
  const bert::v1::JobSpec& spec = result.spec;
  EXPECT_EQ(spec.tokenizer().vocab_size(), 8000);
  EXPECT_FALSE(spec.tokenizer().lowercase());
  EXPECT_EQ(spec.preprocess().max_seq_length(), 128);
  EXPECT_EQ(spec.preprocess().shuffle_seed(), 0u);
  EXPECT_EQ(spec.preprocess().validation_fraction(), 0);
  EXPECT_EQ(spec.training().eval_steps(), 0) << "no validation split, so no periodic eval";
  EXPECT_EQ(spec.model().hidden_size(), 128);
  EXPECT_EQ(spec.model().num_hidden_layers(), 3);
  EXPECT_EQ(spec.model().num_attention_heads(), 2);
  EXPECT_EQ(spec.model().intermediate_size(), 512);
  EXPECT_EQ(spec.training().max_steps(), 1000);
  EXPECT_EQ(spec.training().seed(), 0u);
  EXPECT_EQ(spec.resources().accelerator(), "hpu");
  EXPECT_EQ(spec.output().dir(), TestData() + "/out/model");
  EXPECT_EQ(spec.labels().at("team"), "nlp");
}

TEST(JobSpecTest, JsonlFormatIsInferredAndGlobsAreKept) {
  const ParseResult result = Parse(
      "name: docs\ncorpus:\n  sources:\n    - paths: ['*.jsonl']\n    - paths: corpus.txt\n"
      "      document_separator: blank_line\n");
  ASSERT_TRUE(result.ok()) << Dump(result);
  EXPECT_EQ(result.spec.corpus().sources(0).paths(0), TestData() + "/*.jsonl");
  EXPECT_EQ(result.spec.corpus().sources(0).format(), "jsonl");
  EXPECT_EQ(result.spec.corpus().sources(0).text_field(), "text");
  EXPECT_EQ(result.spec.corpus().sources(1).format(), "text");
  EXPECT_EQ(result.spec.corpus().sources(1).document_separator(), "blank_line");
}

TEST(JobSpecTest, ExistingTokenizerSkipsTheTokenizerStage) {
  const fs::path dir = fs::temp_directory_path() / ("spec_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    std::ofstream vocab(dir / "vocab.txt");
    for (const char* token : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "fox", "##es"}) {
      vocab << token << "\n";
    }
  }
  ParseOptions options;
  options.base_dir = TestData();
  const ParseResult result = ParseJobSpec(
      std::string(kHead) + "tokenizer:\n  from: " + (dir / "vocab.txt").string() + "\n", options);
  ASSERT_TRUE(result.ok()) << Dump(result);
  EXPECT_EQ(result.spec.tokenizer().from(), (dir / "vocab.txt").string());
#ifdef BERT_SPEC_WITH_TOKENIZER
  EXPECT_EQ(result.spec.tokenizer().vocab_size(), 8);
#endif
  EXPECT_THAT(PlannedStages(result.spec),
              ::testing::ElementsAre(bert::v1::PREPARE, bert::v1::PREPROCESS, bert::v1::PRETRAIN,
                                     bert::v1::EXPORT));
  fs::remove_all(dir);
}

TEST(JobSpecTest, ExamplesAreValid) {
  for (const auto& entry : fs::directory_iterator(SourceDir() + "/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    const std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ParseOptions options;
    options.base_dir = entry.path().parent_path().string();
    options.check_paths = false;  // their corpora are fetched, not committed
    const ParseResult result = ParseJobSpec(yaml, options);
    EXPECT_TRUE(result.ok()) << FormatErrors(entry.path().string(), result.errors);
  }
}

TEST(JobSpecTest, ArticleExampleHasTheArticleSettings) {
  std::ifstream in(SourceDir() + "/examples/article.yaml");
  ASSERT_TRUE(in.good());
  const std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ParseOptions options;
  options.check_paths = false;
  const ParseResult result = ParseJobSpec(yaml, options);
  ASSERT_TRUE(result.ok()) << Dump(result);
  EXPECT_EQ(result.spec.tokenizer().vocab_size(), 32000);
  EXPECT_EQ(result.spec.preprocess().max_seq_length(), 512);
  EXPECT_EQ(result.spec.preprocess().shuffle_seed(), 34u);
  EXPECT_EQ(result.spec.training().max_steps(), 100000);
  EXPECT_EQ(result.spec.training().per_device_batch_size(), 32);
  EXPECT_DOUBLE_EQ(result.spec.training().learning_rate(), 5e-5);
  EXPECT_EQ(result.spec.resources().accelerator(), "hpu");
  EXPECT_EQ(result.spec.resources().devices(), 8);
  EXPECT_EQ(result.spec.model().hidden_size(), 768);
}

TEST(JobSpecTest, FormatErrorsNamesFileLineColumnAndField) {
  bert::v1::SpecError error;
  error.set_field("training.per_device_batch_size");
  error.set_message("must be at least 1, got 0");
  error.set_line(12);
  error.set_column(5);
  EXPECT_EQ(FormatErrors("job.yaml", {error}),
            "job.yaml:12:5: training.per_device_batch_size: must be at least 1, got 0\n");
}

struct BadSpec {
  const char* name;
  std::string yaml;
  const char* field;
  int line;
  int column;
  const char* message;  // a substring of the error's message
};

class BadSpecTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(BadSpecTest, ReportsFieldLocationAndReason) {
  const BadSpec& bad = GetParam();
  const ParseResult result = Parse(bad.yaml);
  ASSERT_FALSE(result.ok()) << bad.yaml;
  const bert::v1::SpecError* match = nullptr;
  for (const auto& error : result.errors) {
    if (error.field() == bad.field) match = &error;
  }
  ASSERT_NE(match, nullptr) << "no error for '" << bad.field << "' in:\n" << Dump(result);
  EXPECT_EQ(match->line(), bad.line) << Dump(result);
  EXPECT_EQ(match->column(), bad.column) << Dump(result);
  EXPECT_THAT(match->message(), HasSubstr(bad.message)) << Dump(result);
}

std::string Head(const std::string& rest) { return std::string(kHead) + rest; }

INSTANTIATE_TEST_SUITE_P(
    Specs, BadSpecTest,
    ::testing::Values(
        BadSpec{"NegativeSteps", Head("training:\n  max_steps: -5\n"), "training.max_steps", 5, 14,
                "must be at least 1, got -5"},
        BadSpec{"ZeroBatch", Head("training:\n  per_device_batch_size: 0\n"),
                "training.per_device_batch_size", 5, 26, "must be between 1 and"},
        BadSpec{"IntegerTypeError", Head("training:\n  max_steps: abc\n"), "training.max_steps", 5,
                14, "expected an integer, got 'abc'"},
        BadSpec{"Int32Overflow", Head("tokenizer:\n  vocab_size: 3000000000\n"),
                "tokenizer.vocab_size", 5, 15, "must be between"},
        BadSpec{"NumberTypeError", Head("training:\n  learning_rate: fast\n"),
                "training.learning_rate", 5, 18, "expected a number, got 'fast'"},
        BadSpec{"BoolTypeError", Head("tokenizer:\n  lowercase: maybe\n"), "tokenizer.lowercase", 5,
                14, "expected true or false, got 'maybe'"},
        BadSpec{"ListForScalar", Head("training:\n  learning_rate: [1, 2]\n"),
                "training.learning_rate", 5, 18, "expected a number, got a list"},
        BadSpec{"ScalarForSection", Head("training: 5\n"), "training", 4, 11,
                "expected a mapping, got '5'"},
        BadSpec{"EmptyScalar", Head("training:\n  max_steps:\n"), "training.max_steps", 5, 3,
                "expected an integer, got nothing"},
        BadSpec{"UnknownField", Head("training:\n  max_step: 10\n"), "training.max_step", 5, 3,
                "unknown field; did you mean 'max_steps'?"},
        BadSpec{"HuggingFaceName", Head("training:\n  per_device_train_batch_size: 32\n"),
                "training.per_device_train_batch_size", 5, 3,
                "did you mean 'per_device_batch_size'"},
        BadSpec{"UnknownTopLevel", Head("trainer:\n  max_steps: 10\n"), "trainer", 4, 1,
                "did you mean 'training'"},
        BadSpec{"DuplicateKey", Head("training:\n  max_steps: 5\n  max_steps: 6\n"),
                "training.max_steps", 6, 3, "duplicate key"},
        BadSpec{"MissingName", "corpus:\n  sources: [corpus.txt]\n", "name", 1, 1,
                "missing required field"},
        BadSpec{"BadName", Head("").replace(0, 7, "name: 'a b'"), "name", 1, 7, "letters, digits"},
        BadSpec{"MissingSources", "name: t\ncorpus: {}\n", "corpus.sources", 2, 9,
                "missing required field"},
        BadSpec{"GlobMatchesNothing", "name: t\ncorpus:\n  sources:\n    - paths: ['none/*.txt']\n",
                "corpus.sources[0].paths[0]", 4, 15, "matches no file"},
        BadSpec{"MissingFile", "name: t\ncorpus:\n  sources: [missing.txt]\n",
                "corpus.sources[0].paths[0]", 3, 13, "does not exist"},
        BadSpec{"BadFormat",
                "name: t\ncorpus:\n  sources:\n    - paths: corpus.txt\n      format: csv\n",
                "corpus.sources[0].format", 5, 15, "must be one of text, jsonl; got 'csv'"},
        BadSpec{"TextFieldOnText",
                "name: t\ncorpus:\n  sources:\n    - paths: corpus.txt\n      text_field: body\n",
                "corpus.sources[0].text_field", 5, 19, "only applies to format 'jsonl'"},
        BadSpec{"BadCompression",
                "name: t\ncorpus:\n  sources:\n    - paths: corpus.txt\n      compression: lz4\n",
                "corpus.sources[0].compression", 5, 20, "got 'lz4'"},
        BadSpec{"VocabBelowSpecialTokens", Head("tokenizer:\n  vocab_size: 5\n"),
                "tokenizer.vocab_size", 5, 15, "larger than the number of special tokens (5)"},
        BadSpec{
            "MissingMaskToken",
            Head("tokenizer:\n  special_tokens: [\"[PAD]\", \"[UNK]\", \"[CLS]\", \"[SEP]\"]\n"),
            "tokenizer.special_tokens", 5, 19, "must include [MASK]"},
        BadSpec{"DuplicateSpecialToken",
                Head("tokenizer:\n  special_tokens:\n    - '[PAD]'\n    - '[UNK]'\n    - '[CLS]'\n"
                     "    - '[SEP]'\n    - '[MASK]'\n    - '[PAD]'\n"),
                "tokenizer.special_tokens[5]", 11, 7, "duplicate token '[PAD]'"},
        BadSpec{"FromWithTrainingFields",
                Head("tokenizer:\n  from: vocab.txt\n  vocab_size: 100\n"), "tokenizer.vocab_size",
                6, 15, "cannot be set together with tokenizer.from"},
        BadSpec{"TokenizerFromMissing", Head("tokenizer:\n  from: nowhere/vocab.txt\n"),
                "tokenizer.from", 5, 9, "does not exist"},
        BadSpec{"SeqAbovePositions", Head("preprocess:\n  max_seq_length: 1024\n"),
                "preprocess.max_seq_length", 5, 19,
                "exceeds the model's max_position_embeddings (512)"},
        BadSpec{"PositionsBelowSeq", Head("model:\n  max_position_embeddings: 128\n"),
                "model.max_position_embeddings", 5, 28, "max_seq_length (512) exceeds"},
        BadSpec{"ValidationFractionTooLarge", Head("preprocess:\n  validation_fraction: 0.9\n"),
                "preprocess.validation_fraction", 5, 24, "must be in [0, 0.5]"},
        BadSpec{"DatasetMissing",
                Head("preprocess:\n  from_dataset: nowhere\ntokenizer:\n  from: corpus.txt\n"),
                "preprocess.from_dataset", 5, 17, "not a packed dataset"},
        BadSpec{"UnknownPreset", Head("model:\n  preset: bert-bse-uncased\n"), "model.preset", 5,
                11, "unknown preset 'bert-bse-uncased'; did you mean 'bert-base-uncased'?"},
        BadSpec{"HeadsDoNotDivideHidden",
                Head("model:\n  preset: bert-tiny\n  num_attention_heads: 3\n"),
                "model.num_attention_heads", 6, 24,
                "hidden_size (128) must be a multiple of num_attention_heads (3)"},
        BadSpec{"UnknownInitialization", Head("model:\n  initialization: xavier\n"),
                "model.initialization", 5, 19,
                "must be one of normal, local-attention; got 'xavier'"},
        BadSpec{"LocalAttentionWithOddHeads",
                Head("model:\n  preset: bert-tiny\n  num_attention_heads: 128\n"
                     "  initialization: local-attention\n"),
                "model.initialization", 7, 19,
                "local-attention needs an even head size; hidden_size / num_attention_heads is 1"},
        BadSpec{"DropoutOfOne", Head("model:\n  hidden_dropout_prob: 1\n"),
                "model.hidden_dropout_prob", 5, 24, "must be in [0, 1)"},
        BadSpec{"MlmProbability", Head("training:\n  mlm_probability: 1.5\n"),
                "training.mlm_probability", 5, 20, "must be in (0, 1)"},
        BadSpec{"NegativePeakTflops", Head("training:\n  peak_tflops: -1\n"),
                "training.peak_tflops", 5, 16, "must be in [0, 1e6)"},
        BadSpec{"ZeroLearningRate", Head("training:\n  learning_rate: 0\n"),
                "training.learning_rate", 5, 18, "must be in (0, 1)"},
        BadSpec{"WarmupBeyondSteps", Head("training:\n  max_steps: 10\n  warmup_steps: 20\n"),
                "training.warmup_steps", 6, 17, "exceeds training.max_steps (10)"},
        BadSpec{"Fp16", Head("training:\n  precision: fp16\n"), "training.precision", 5, 14,
                "must be one of fp32, bf16"},
        BadSpec{"ZeroAccumulation", Head("training:\n  gradient_accumulation_steps: 0\n"),
                "training.gradient_accumulation_steps", 5, 32, "must be between 1 and"},
        BadSpec{"EvalWithoutValidation",
                Head("preprocess:\n  validation_fraction: 0\ntraining:\n  eval_steps: 100\n"),
                "training.eval_steps", 7, 15, "needs a validation split"},
        BadSpec{"ZeroLoggingSteps", Head("training:\n  logging_steps: 0\n"),
                "training.logging_steps", 5, 18, "must be at least 1"},
        BadSpec{"UnknownAccelerator", Head("resources:\n  accelerator: tpu\n"),
                "resources.accelerator", 5, 16, "must be one of cpu, cuda, hpu; got 'tpu'"},
        BadSpec{"ZeroDevices", Head("resources:\n  accelerator: cuda\n  devices: 0\n"),
                "resources.devices", 6, 12, "must be between 1 and 64"},
        BadSpec{"LabelsNotStrings", Head("labels:\n  team: [a, b]\n"), "labels.team", 5, 3,
                "expected a 'key: value' pair of strings"},
        BadSpec{"YamlSyntax", Head("training:\n  max_steps: [1, 2\n"), "", 6, 1, "invalid YAML"},
        BadSpec{"NotAMapping", "- a\n- b\n", "", 1, 1, "expected a mapping, got a list"},
        BadSpec{"Empty", "", "", 1, 1, "the spec is empty"}),
    [](const ::testing::TestParamInfo<BadSpec>& info) { return std::string(info.param.name); });

TEST(JobSpecTest, ReportsEveryErrorNotJustTheFirst) {
  const ParseResult result = Parse(
      Head("training:\n  max_steps: 0\n  per_device_batch_size: 0\nresources:\n  hosts: 0\n"));
  EXPECT_EQ(result.errors.size(), 3u) << Dump(result);
}

TEST(JobSpecTest, TypeErrorIsReportedOnce) {
  const ParseResult result = Parse(Head("training:\n  max_steps: ten\n"));
  ASSERT_EQ(result.errors.size(), 1u) << Dump(result);
  EXPECT_EQ(Dump(result), "job.yaml:5:14: training.max_steps: expected an integer, got 'ten'\n");
}

TEST(JobSpecTest, OversizedSpecIsRefused) {
  const std::string yaml = Head("labels:\n  x: '" + std::string(2 << 20, 'a') + "'\n");
  const ParseResult result = Parse(yaml);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_THAT(result.errors[0].message(), HasSubstr("the limit is"));
}

TEST(JobSpecTest, DeeplyNestedYamlIsAnErrorNotACrash) {
  const std::string yaml = Head("labels: " + std::string(100000, '[') + "\n");
  EXPECT_FALSE(Parse(yaml).ok());
}

TEST(JobSpecTest, WithoutPathChecksMissingFilesAreFine) {
  EXPECT_TRUE(Parse("name: t\ncorpus:\n  sources: [missing/*.txt]\n", false).ok());
}

// model.initialization: "normal" (Hugging Face's, the article's) unless set.
TEST(JobSpecTest, InitializationDefaultsToNormalAndKeepsLocalAttention) {
  const ParseResult plain = Parse(kHead);
  ASSERT_TRUE(plain.ok()) << Dump(plain);
  EXPECT_EQ(plain.spec.model().initialization(), "normal");
  const ParseResult local = Parse(std::string(kHead) + "model:\n  initialization: local-attention\n");
  ASSERT_TRUE(local.ok()) << Dump(local);
  EXPECT_EQ(local.spec.model().initialization(), "local-attention");
}

// precision: auto is the worker's to resolve (engine/precision.h); the spec keeps it as written.
TEST(JobSpecTest, PrecisionAutoIsKeptForTheWorker) {
  const ParseResult result = Parse(std::string(kHead) + "training:\n  precision: auto\n");
  ASSERT_TRUE(result.ok()) << Dump(result);
  EXPECT_EQ(result.spec.training().precision(), "auto");
}

// peak_tflops: optional, 0 (the engine's table or measurement) unless set.
TEST(JobSpecTest, PeakTflopsDefaultsToZeroAndKeepsItsValue) {
  const ParseResult plain = Parse(kHead);
  ASSERT_TRUE(plain.ok()) << Dump(plain);
  EXPECT_EQ(plain.spec.training().peak_tflops(), 0.0);
  const ParseResult set = Parse(std::string(kHead) + "training:\n  peak_tflops: 989.4\n");
  ASSERT_TRUE(set.ok()) << Dump(set);
  EXPECT_DOUBLE_EQ(set.spec.training().peak_tflops(), 989.4);
}

}  // namespace
}  // namespace bert::spec
