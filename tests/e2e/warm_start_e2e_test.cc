// Warm start end to end, as a user runs it: a real `bertd --local-agent` and
// `bertctl`. A first job trains a tiny model; a second starts from its
// exported model ("model.from: job:<id>"), a third from that model as a
// Hugging Face directory on disk (the engine's export, without its
// tokenizer.json as many downloaded models come); both skip the
// tokenizer stage, log the warm start and succeed. About a minute on 2 cores.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/e2e/local_bertd.h"
#include "tests/testing/temp_dir.h"

namespace bert::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

// A tiny job on the committed Brown excerpt; `model` is its model section.
std::string Spec(const std::string& name, const std::string& model) {
  return "name: " + name + R"(
corpus:
  sources: [brown-1200.txt]
preprocess:
  max_seq_length: 64
)" + model +
         R"(training:
  max_steps: 6
  per_device_batch_size: 8
  learning_rate: 1.0e-3
  warmup_steps: 1
  save_steps: 0
  logging_steps: 2
  eval_steps: 0
)";
}

class WarmStartE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = MissingPrograms();
    if (!missing.empty()) GTEST_SKIP() << missing;
    dir_ = temp_.path();
    fs::create_directories(dir_ / "specs");
    fs::copy_file(SourceDir() + "/tests/e2e/testdata/brown-1200.txt",
                  dir_ / "specs" / "brown-1200.txt");
    bertd_ = std::make_unique<LocalBertd>(dir_);
    std::string error;
    ASSERT_TRUE(bertd_->Start({}, &error)) << error;
  }

  using Run = CliRun;
  Run Bertctl(const std::string& args) { return bertd_->Bertctl(args); }

  // Writes specs/<name>.yaml and submits it; the job id ("" on failure).
  std::string Submit(const std::string& name, const std::string& yaml) {
    return bertd_->SubmitSpec(dir_ / "specs" / (name + ".yaml"), yaml);
  }

  // Waits until the job is final (at most 5 minutes).
  json WaitFinished(const std::string& id) {
    const json job = bertd_->WaitForState(id);
    const std::string state = job.is_object() ? job.value("state", "") : "";
    if (state != "SUCCEEDED" && state != "FAILED" && state != "CANCELLED") {
      ADD_FAILURE() << "job " << id << " did not finish: " << job.dump(2) << "\nbertd log:\n"
                    << bertd_->Log();
    }
    return job;
  }

  // Where the job's exported model lies on this machine (the embedded agent's
  // artifact, file:// or in bertd's artifact root).
  fs::path ExportedModel(const json& job) {
    for (const json& stage : job["stages"]) {
      if (stage.value("kind", "") != "EXPORT") continue;
      for (const json& out : stage["outputs"]) {
        const std::string uri = out.value("uri", "");
        if (uri.rfind("file://", 0) == 0) return uri.substr(7);
        if (uri.rfind("bertd://", 0) == 0) return bertd_->data_dir() / "artifacts" / uri.substr(8);
      }
    }
    return {};
  }

  bert::testing::TempDir temp_{"warm_e2e_"};
  fs::path dir_;
  std::unique_ptr<LocalBertd> bertd_;
};

TEST_F(WarmStartE2eTest, ASecondJobStartsFromTheFirstOnesModel) {
  const std::string first = Submit("first", Spec("first", R"(tokenizer:
  vocab_size: 1000
model:
  preset: bert-tiny
  hidden_size: 64
  num_attention_heads: 2
  intermediate_size: 256
)"));
  ASSERT_FALSE(first.empty());
  const json done = WaitFinished(first);
  ASSERT_EQ(done.value("state", ""), "SUCCEEDED") << done.dump(2) << bertd_->Log();

  // A model the submitter cannot name is refused at submit, clearly.
  std::ofstream(dir_ / "specs" / "nosuch.yaml")
      << Spec("nosuch", "model:\n  from: job:j-no-such-job\n");
  const Run refused = Bertctl("submit --upload never " + (dir_ / "specs" / "nosuch.yaml").string());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("no job 'j-no-such-job' that you may see")) << refused.err;

  // From the first job's model: its architecture and tokenizer, no tokenizer stage.
  const std::string second =
      Submit("second", Spec("second", "model:\n  from: job:" + first + "\n"));
  ASSERT_FALSE(second.empty());
  const json warm = WaitFinished(second);
  ASSERT_EQ(warm.value("state", ""), "SUCCEEDED") << warm.dump(2) << bertd_->Log();
  EXPECT_EQ(StageState(warm, "TOKENIZER"), "SKIPPED");
  EXPECT_EQ(
      warm["spec"]["model"].value("hiddenSize", warm["spec"]["model"].value("hidden_size", 0)), 64)
      << warm["spec"].dump(2);
  const Run logs = Bertctl("logs " + second);
  EXPECT_THAT(logs.out, HasSubstr("warm start from")) << logs.out << logs.err;

  // From the same model as a Hugging Face directory beside the spec.
  const fs::path exported = ExportedModel(done);
  ASSERT_TRUE(fs::exists(exported / "config.json")) << exported << "\n" << done.dump(2);
  fs::copy(exported, dir_ / "specs" / "hf-model", fs::copy_options::recursive);
  // As many downloaded models have it: vocab.txt (with tokenizer_config.json), no tokenizer.json.
  fs::remove(dir_ / "specs" / "hf-model" / "tokenizer.json");
  const std::string third = Submit("third", Spec("third", "model:\n  from: hf-model\n"));
  ASSERT_FALSE(third.empty());
  const json from_dir = WaitFinished(third);
  ASSERT_EQ(from_dir.value("state", ""), "SUCCEEDED")
      << from_dir.dump(2) << bertd_->Log();
  EXPECT_EQ(StageState(from_dir, "TOKENIZER"), "SKIPPED");
  const Run third_logs = Bertctl("logs " + third);
  EXPECT_THAT(third_logs.out, HasSubstr("warm start from")) << third_logs.out << third_logs.err;
  EXPECT_EQ(from_dir["spec"]["tokenizer"].value("from", ""),
            (dir_ / "specs" / "hf-model").string());
  // Its export is a whole Hugging Face directory again, tokenizer.json included.
  const fs::path again = ExportedModel(from_dir);
  EXPECT_TRUE(fs::exists(again / "tokenizer.json")) << again;
  EXPECT_TRUE(fs::exists(again / "model.safetensors")) << again;
}

}  // namespace
}  // namespace bert::e2e
