// bertctl against a real bertd on loopback (no agents, so jobs stay queued
// until cancelled): submit, server-side validation, list, get, watch, cancel.
// Skipped when bertd is not built next to bertctl.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace bert::client {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}
std::string BinDir() { return Env("BERT_BIN_DIR", BERT_TEST_BIN_DIR); }
std::string TestData() {
  return Env("BERT_SOURCE_DIR", BERT_TEST_SOURCE_DIR) + "/tests/client/testdata";
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class BertdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(BinDir() + "/bertd") || !fs::exists(BinDir() + "/bertctl")) {
      GTEST_SKIP() << "bertd or bertctl not built in " << BinDir();
    }
    dir_ = fs::temp_directory_path() / ("bertd_client_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string port_file = (dir_ / "port").string();
    fflush(stdout);
    fflush(stderr);
    pid_ = fork();
    if (pid_ == 0) {
      const std::string log = (dir_ / "bertd.log").string();
      freopen(log.c_str(), "w", stdout);
      freopen(log.c_str(), "a", stderr);
      std::vector<std::string> args = {BinDir() + "/bertd", "--listen",    "127.0.0.1:0",
                                       "--data-dir",        (dir_ / "data").string(),
                                       "--port-file",       port_file};
      args.insert(args.end(), extra_args_.begin(), extra_args_.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 200 && !fs::exists(port_file); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(fs::exists(port_file)) << Slurp(dir_ / "bertd.log");
    server_ = "127.0.0.1:" + std::to_string(std::stoi(Slurp(port_file)));
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  CommandResult Bertctl(const std::string& args) {
    const std::string command = "env -u BERTCTL_TOKEN " + BinDir() + "/bertctl " + args +
                                " --server " + server_ + " >" + (dir_ / "out").string() + " 2>" +
                                (dir_ / "err").string() + " </dev/null";
    const int status = std::system(command.c_str());
    CommandResult run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = Slurp(dir_ / "out");
    run.err = Slurp(dir_ / "err");
    return run;
  }

  fs::path dir_;
  pid_t pid_ = -1;
  std::string server_;
  std::vector<std::string> extra_args_;  // more bertd flags, set before SetUp
};

TEST_F(BertdTest, SubmitGetListWatchCancel) {
  CommandResult run = Bertctl("-o json submit " + TestData() + "/good.yaml --idempotency-key once");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json submitted = nlohmann::json::parse(run.out);
  const std::string id = submitted["job"]["id"];
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(submitted["job"]["spec"]["model"]["hidden_size"], 128);

  // The same idempotency key returns the same job.
  run = Bertctl("submit " + TestData() + "/good.yaml --idempotency-key once");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("job already exists: " + id));

  run = Bertctl("get " + id + " -o json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json job = nlohmann::json::parse(run.out);
  EXPECT_EQ(job["state"], "QUEUED");
  EXPECT_EQ(job["stages"].size(), 5u);

  run = Bertctl("list -o json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["jobs"].size(), 1u);

  run = Bertctl("watch " + id + " --no-follow");
  EXPECT_EQ(run.exit_code, 0) << run.err;

  run = Bertctl("cancel " + id + " --reason test");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // The stream ends with the job; a cancelled job is not a success.
  run = Bertctl("watch " + id);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("job " + id + " cancelled"));
  EXPECT_EQ(Bertctl("get no-such-job").exit_code, 4);
  EXPECT_EQ(Bertctl("agents").exit_code, 0);
}

TEST_F(BertdTest, BertdValidatesOnReceiptToo) {
  // Skipping the local path check leaves it to bertd, which reports it the same way.
  const std::string spec = (dir_ / "missing.yaml").string();
  std::ofstream(spec) << "name: x\ncorpus:\n  sources: [nowhere/*.txt]\n";
  CommandResult run = Bertctl("submit --no-check-paths " + spec);
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_THAT(run.err, HasSubstr(spec + ":3:13: corpus.sources[0].paths[0]"));
  EXPECT_THAT(run.err, HasSubstr("matches no file"));
  run = Bertctl("validate --remote --no-check-paths " + spec);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("matches no file"));
  run = Bertctl("-o json list");
  EXPECT_TRUE(nlohmann::json::parse(run.out)["jobs"].empty()) << run.out;
}

// The embedded single-user default (bertd --local-agent, no tokens): the
// real agent reads a job's inputs under the directory its spec was submitted
// from, and nowhere else.
class LocalAgentRootsTest : public BertdTest {
 protected:
  void SetUp() override {
    if (!fs::exists(BinDir() + "/bert-agent")) GTEST_SKIP() << "bert-agent not built";
    extra_args_ = {"--local-agent", "--agent-path", BinDir() + "/bert-agent"};
    BertdTest::SetUp();
  }

  // Polls `bertctl get` until PREPARE leaves QUEUED/RUNNING; the job as JSON.
  nlohmann::json WaitForPrepare(const std::string& id) {
    nlohmann::json job;
    for (int i = 0; i < 600; ++i) {
      CommandResult run = Bertctl("get " + id + " -o json");
      if (run.exit_code == 0) {
        job = nlohmann::json::parse(run.out);
        const std::string prepare = job["stages"][0]["state"];
        if (prepare != "QUEUED" && prepare != "RUNNING") return job;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "PREPARE did not finish; bertd log:\n" << Slurp(dir_ / "bertd.log");
    return job;
  }

  std::string SubmitSpec(const fs::path& spec, const std::string& flags = "") {
    CommandResult run = Bertctl("-o json submit " + flags + spec.string());
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return nlohmann::json::parse(run.out)["job"]["id"];
  }
};

TEST_F(LocalAgentRootsTest, InputsAreReadOnlyUnderTheSpecsOwnDirectory) {
  fs::create_directories(dir_ / "specs");
  fs::create_directories(dir_ / "elsewhere");
  fs::copy_file(TestData() + "/corpus.txt", dir_ / "specs" / "corpus.txt");
  fs::copy_file(TestData() + "/corpus.txt", dir_ / "elsewhere" / "corpus.txt");
  const std::string spec = Slurp(TestData() + "/good.yaml");
  std::ofstream(dir_ / "specs" / "inside.yaml") << spec;
  std::string outside = spec;
  outside.replace(outside.find("[corpus.txt]"), 12, "[../elsewhere/corpus.txt]");
  std::ofstream(dir_ / "specs" / "outside.yaml") << outside;

  const std::string inside_id = SubmitSpec(dir_ / "specs" / "inside.yaml");
  nlohmann::json job = WaitForPrepare(inside_id);
  EXPECT_EQ(job["stages"][0]["state"], "SUCCEEDED") << job.dump(2);
  EXPECT_EQ(Bertctl("cancel " + inside_id).exit_code, 0);

  // Without an upload (bertctl would otherwise send the file: see below).
  const std::string outside_id = SubmitSpec(dir_ / "specs" / "outside.yaml", "--upload never ");
  job = WaitForPrepare(outside_id);
  EXPECT_EQ(job["stages"][0]["state"], "FAILED") << job.dump(2);
  EXPECT_EQ(job["failure_cause"], "DATA_ERROR") << job.dump(2);
  const std::string message = job.dump();
  EXPECT_THAT(message, HasSubstr("elsewhere/corpus.txt"));
  EXPECT_THAT(message, HasSubstr("outside this agent's data roots"));
}

// Every file under `dir` whose path holds `part` and whose text holds `text`.
std::vector<fs::path> FilesHolding(const fs::path& dir, const std::string& part,
                                   const std::string& text) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (!e.is_regular_file() || e.path().string().find(part) == std::string::npos) continue;
    if (Slurp(e.path()).find(text) != std::string::npos) found.push_back(e.path());
  }
  return found;
}

// The user: a corpus that only the submitting side can see (outside
// every agent data root and outside the spec's directory, which is all the
// embedded agent reads). bertctl uploads it, the job's prepare reads the
// upload, and submitting the same file again sends no byte.
TEST_F(LocalAgentRootsTest, ACorpusOnlyTheSubmitterSeesIsUploadedOnceAndPrepared) {
  fs::create_directories(dir_ / "specs");
  fs::create_directories(dir_ / "laptop");
  const std::string marker = "a sentence that only the laptop's corpus holds";
  std::ofstream(dir_ / "laptop" / "corpus.txt")
      << Slurp(TestData() + "/corpus.txt") << marker << "\n";
  std::string spec = Slurp(TestData() + "/good.yaml");
  spec.replace(spec.find("[corpus.txt]"), 12, "[" + (dir_ / "laptop" / "corpus.txt").string() + "]");
  const fs::path spec_file = dir_ / "specs" / "job.yaml";
  std::ofstream(spec_file) << spec;

  CommandResult run = Bertctl("-o json submit " + spec_file.string());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, HasSubstr("uploading " + (dir_ / "laptop" / "corpus.txt").string()));
  EXPECT_THAT(run.err, HasSubstr("(1 uploaded, 0 already on bertd)"));
  const nlohmann::json first = nlohmann::json::parse(run.out)["job"];
  ASSERT_EQ(first["input_files"].size(), 1u) << first.dump(2);
  const std::string sha = first["input_files"][0]["sha256"];
  EXPECT_EQ(first["input_files"][0]["path"], (dir_ / "laptop" / "corpus.txt").string());
  // Held once, content-addressed, in bertd's artifact root.
  const fs::path stored = dir_ / "data" / "artifacts" / "inputs" / sha;
  ASSERT_TRUE(fs::exists(stored));
  EXPECT_EQ(Slurp(stored), Slurp(dir_ / "laptop" / "corpus.txt"));
  const auto stored_at = fs::last_write_time(stored);

  nlohmann::json job = WaitForPrepare(first["id"]);
  EXPECT_EQ(job["stages"][0]["state"], "SUCCEEDED") << job.dump(2);
  // The prepared corpus holds the laptop's text: prepare read the upload.
  EXPECT_FALSE(FilesHolding(dir_ / "data", std::string(first["id"]) + "/prepare", marker).empty());
  EXPECT_EQ(Bertctl("cancel " + std::string(first["id"])).exit_code, 0);

  // The same file again: bertd holds it, not one byte is sent.
  run = Bertctl("-o json submit " + spec_file.string());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, HasSubstr("already on bertd, nothing sent"));
  EXPECT_THAT(run.err, HasSubstr("0 B sent (0 uploaded, 1 already on bertd)"));
  EXPECT_EQ(fs::last_write_time(stored), stored_at);
  const nlohmann::json second = nlohmann::json::parse(run.out)["job"];
  EXPECT_EQ(second["input_files"][0]["sha256"], sha);
  job = WaitForPrepare(second["id"]);
  EXPECT_EQ(job["stages"][0]["state"], "SUCCEEDED") << job.dump(2);
  EXPECT_EQ(Bertctl("cancel " + std::string(second["id"])).exit_code, 0);
}

// The operator's limit: a file over it is refused before any byte is sent,
// and nothing is submitted.
class UploadLimitTest : public BertdTest {
 protected:
  void SetUp() override {
    extra_args_ = {"--max-upload-bytes", "64"};
    BertdTest::SetUp();
  }
};

TEST_F(UploadLimitTest, AFileOverTheLimitIsAClearErrorBeforeAnyByte) {
  fs::create_directories(dir_ / "specs");
  fs::create_directories(dir_ / "laptop");
  std::ofstream(dir_ / "laptop" / "corpus.txt") << std::string(100, 'x') << "\n";
  std::string spec = Slurp(TestData() + "/good.yaml");
  spec.replace(spec.find("[corpus.txt]"), 12, "[" + (dir_ / "laptop" / "corpus.txt").string() + "]");
  std::ofstream(dir_ / "specs" / "job.yaml") << spec;
  // No embedded agent here: no directory is shared, so the file must go up.
  CommandResult run = Bertctl("submit " + (dir_ / "specs" / "job.yaml").string());
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_THAT(run.err, HasSubstr((dir_ / "laptop" / "corpus.txt").string()));
  EXPECT_THAT(run.err, HasSubstr("over this bertd's upload limit of 64 B"));
  EXPECT_THAT(run.err, Not(HasSubstr("uploading")));
  EXPECT_FALSE(fs::exists(dir_ / "data" / "artifacts" / "inputs"));
  run = Bertctl("-o json list");
  EXPECT_TRUE(nlohmann::json::parse(run.out)["jobs"].empty()) << run.out;
}

}  // namespace
}  // namespace bert::client
