// bertctl as users run it: the binary, its exit codes, its text and JSON
// output; offline verbs alone, the rest against FakeJobService on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/client/fake_job_service.h"

namespace bert::client {
namespace {

namespace fs = std::filesystem;
using testing::FakeJobService;
using testing::FakeServer;
using ::testing::HasSubstr;

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

std::string Bertctl() { return Env("BERT_BIN_DIR", BERT_TEST_BIN_DIR) + "/bertctl"; }
std::string TestData() {
  return Env("BERT_SOURCE_DIR", BERT_TEST_SOURCE_DIR) + "/tests/client/testdata";
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs bertctl with `args` (shell words) and BERTCTL_* unset unless `env` sets them.
CommandResult Bertctl(const std::string& args, const std::string& env = "",
                      const std::string& stdin_file = "/dev/null") {
  const fs::path dir = fs::temp_directory_path() / ("bertctl_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string command = "env -u BERTCTL_SERVER -u BERTCTL_TOKEN " + env + " " + Bertctl() +
                              " " + args + " >" + (dir / "out").string() + " 2>" +
                              (dir / "err").string() + " <" + stdin_file;
  const int status = std::system(command.c_str());
  CommandResult run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = Slurp(dir / "out");
  run.err = Slurp(dir / "err");
  fs::remove_all(dir);
  return run;
}

class BertctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Bertctl())) GTEST_SKIP() << Bertctl() << " is not built";
  }
};

TEST_F(BertctlTest, ValidateGoodSpec) {
  const CommandResult run = Bertctl("validate " + TestData() + "/good.yaml");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("good.yaml: valid"));
  EXPECT_THAT(run.out, HasSubstr("prepare -> tokenizer -> preprocess -> pretrain -> export"));
  EXPECT_THAT(run.out, HasSubstr("bert-tiny: hidden 128, layers 2, heads 2"));
}

TEST_F(BertctlTest, ValidateBadSpecNamesEveryFieldWithLineAndColumn) {
  const std::string file = TestData() + "/bad.yaml";
  const CommandResult run = Bertctl("validate " + file);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr(file + ":5:14: training.max_steps: must be at least 1, got -5"));
  EXPECT_THAT(run.err,
              HasSubstr(file + ":6:26: training.per_device_batch_size: must be between 1"));
  EXPECT_THAT(run.err,
              HasSubstr(file + ":7:3: training.per_device_train_batch_size: unknown field; "
                               "did you mean 'per_device_batch_size'?"));
}

TEST_F(BertctlTest, ValidateJsonCarriesTheNormalisedSpec) {
  const CommandResult run = Bertctl("validate " + TestData() + "/good.yaml --output json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["normalized"]["model"]["hidden_size"], 128);
  EXPECT_EQ(json["normalized"]["training"]["max_steps"], "10");  // int64 is a JSON string
  EXPECT_EQ(json["normalized"]["preprocess"]["shuffle_seed"], "34");
  EXPECT_EQ(json["normalized"]["corpus"]["sources"][0]["paths"][0], TestData() + "/corpus.txt");
  EXPECT_TRUE(json["errors"].empty());

  const CommandResult bad = Bertctl("-o json validate " + TestData() + "/bad.yaml");
  EXPECT_EQ(bad.exit_code, 2);
  const nlohmann::json errors = nlohmann::json::parse(bad.out)["errors"];
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0]["field"], "training.max_steps");
  EXPECT_EQ(errors[0]["line"], 5);
  EXPECT_EQ(errors[0]["column"], 14);
}

TEST_F(BertctlTest, ValidateFromStdinAndUsageErrors) {
  EXPECT_EQ(Bertctl("validate /nonexistent.yaml").exit_code, 2);
  EXPECT_EQ(Bertctl("frobnicate").exit_code, 2);
  EXPECT_EQ(Bertctl("").exit_code, 2);
  EXPECT_EQ(Bertctl("--help").exit_code, 0);
  const CommandResult empty = Bertctl("validate -");
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.err, HasSubstr("<stdin>:1:1: the spec is empty"));
  // From stdin, paths are relative to the current directory.
  const CommandResult run = Bertctl("validate - --no-check-paths", "", TestData() + "/good.yaml");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("<stdin>: valid"));
}

TEST_F(BertctlTest, UnreachableServerExits3) {
  const CommandResult run = Bertctl("get job-1 --server 127.0.0.1:1 --timeout-ms 3000");
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_THAT(run.err, HasSubstr("cannot reach bertd at 127.0.0.1:1"));
  // BERTCTL_SERVER is read too.
  EXPECT_EQ(Bertctl("list --timeout-ms 3000", "BERTCTL_SERVER=127.0.0.1:1").exit_code, 3);
}

TEST_F(BertctlTest, InvalidSpecIsNotSubmitted) {
  FakeJobService service;
  FakeServer server(&service);
  const CommandResult run =
      Bertctl("submit " + TestData() + "/bad.yaml --server " + server.address());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("nothing was submitted"));
  EXPECT_TRUE(service.submitted().empty());
}

TEST_F(BertctlTest, SubmitSendsYamlAndBaseDir) {
  FakeJobService service;
  FakeServer server(&service);
  const CommandResult run =
      Bertctl("submit " + TestData() + "/good.yaml --idempotency-key k1 -s " + server.address());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("submitted job job-1 (tiny)"));
  ASSERT_EQ(service.submitted().size(), 1u);
  EXPECT_EQ(service.submitted()[0].base_dir(), TestData());
  EXPECT_EQ(service.submitted()[0].idempotency_key(), "k1");
  EXPECT_EQ(service.submitted()[0].spec_yaml(), Slurp(TestData() + "/good.yaml"));
}

TEST_F(BertctlTest, GetListAgentsCheckpointsMetrics) {
  FakeJobService service;
  FakeServer server(&service);
  const std::string s = " --server " + server.address();
  CommandResult run = Bertctl("get job-1 -o json" + s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json job = nlohmann::json::parse(run.out);
  EXPECT_EQ(job["id"], "job-1");
  EXPECT_EQ(job["state"], "SUCCEEDED");
  EXPECT_EQ(job["stages"].size(), 5u);
  EXPECT_EQ(job["latest_metrics"]["train/loss"], 6.5);

  run = Bertctl("get job-1" + s);
  EXPECT_THAT(run.out, HasSubstr("state      succeeded"));
  EXPECT_THAT(run.out, HasSubstr("pretrain   succeeded attempt 1/3"));

  EXPECT_EQ(Bertctl("get nope" + s).exit_code, 4);
  EXPECT_EQ(Bertctl("cancel job-1" + s).exit_code, 2);  // already finished

  run = Bertctl("list" + s);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("job-1"));
  EXPECT_EQ(Bertctl("list --state bogus" + s).exit_code, 2);

  run = Bertctl("agents" + s);
  EXPECT_THAT(run.out, HasSubstr("agent-a"));
  EXPECT_THAT(run.out, HasSubstr("cpu,train"));

  run = Bertctl("checkpoints job-1" + s);
  EXPECT_THAT(run.out, HasSubstr("6.5000"));
  EXPECT_THAT(run.out, HasSubstr("checkpoint-10"));

  run = Bertctl("metrics job-1 --name train/loss" + s);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("train/loss (2 points)"));
  EXPECT_THAT(run.out, HasSubstr("7.25"));
}

TEST_F(BertctlTest, TokenFromFlagOrEnvironment) {
  FakeJobService service;
  service.RequireToken("s3cret");
  FakeServer server(&service);
  const std::string s = " --server " + server.address();
  const CommandResult denied = Bertctl("get job-1" + s);
  EXPECT_EQ(denied.exit_code, 5);
  EXPECT_THAT(denied.err, HasSubstr("permission denied"));
  EXPECT_EQ(Bertctl("get job-1 --token s3cret" + s).exit_code, 0);
  EXPECT_EQ(Bertctl("get job-1" + s, "BERTCTL_TOKEN=s3cret").exit_code, 0);
}

TEST_F(BertctlTest, WatchPrintsPlainLinesAndResumesAfterADrop) {
  FakeJobService service;
  service.DropFirstStreamAfter(10);
  FakeServer server(&service);
  const CommandResult run = Bertctl("watch job-1 --server " + server.address());
  EXPECT_EQ(run.exit_code, 0) << run.err;  // the job succeeded
  EXPECT_THAT(run.out, HasSubstr("prepare running"));
  EXPECT_THAT(run.out, HasSubstr("pretrain 50% 5/10 steps 2.5 steps/s ETA 5s"));
  EXPECT_THAT(run.out, HasSubstr("step 10 loss 6.5000"));
  EXPECT_THAT(run.out, HasSubstr("pretrain info: saved checkpoint-10"));
  EXPECT_THAT(run.out, HasSubstr("job job-1 succeeded"));
  // Each transition once, despite the reconnect.
  size_t count = 0;
  for (size_t at = run.out.find("tokenizer succeeded"); at != std::string::npos;
       at = run.out.find("tokenizer succeeded", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << run.out;
  EXPECT_EQ(service.watch_after_seqs(), (std::vector<int64_t>{0, 10}));
}

TEST_F(BertctlTest, WatchJsonIsOneEventPerLine) {
  FakeJobService service;
  FakeServer server(&service);
  const CommandResult run = Bertctl("watch job-1 -o json --server " + server.address());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::istringstream lines(run.out);
  std::string line;
  int64_t expected_seq = 0;
  while (std::getline(lines, line)) {
    const nlohmann::json event = nlohmann::json::parse(line);
    EXPECT_EQ(event["seq"], std::to_string(++expected_seq));
  }
  EXPECT_EQ(expected_seq, service.event_count());
}

TEST_F(BertctlTest, LogsFiltersLogLines) {
  FakeJobService service;
  FakeServer server(&service);
  const CommandResult run = Bertctl("logs job-1 --stage pretrain --server " + server.address());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("pretrain info: saved checkpoint-10"));
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 1);
}

}  // namespace
}  // namespace bert::client
