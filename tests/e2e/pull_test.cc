// `bertctl pull` and `bertctl submit --watch` against a real bertd and agent
// that share no disk with it (every artifact moves through bertd): the model
// reaches the submitting machine's output.dir, TensorBoard logs and
// checkpoints are pulled and verified, an interrupted pull resumes from the
// bytes it held, a directory holding other files is never overwritten, and
// callers who may not view jobs are refused.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "protocol/artifact_manifest.h"
#include "tests/e2e/cluster.h"

namespace bert::e2e {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kAdmin[] = "admin-token-0123456789";
constexpr char kViewer[] = "viewer-token-0123456789";
constexpr char kAgent[] = "agent-token-0123456789";

constexpr char kSpec[] = R"(name: pull
corpus:
  sources:
    - paths: ["brown-1200.txt"]
      format: text
tokenizer:
  vocab_size: 1000
preprocess:
  max_seq_length: 64
model:
  preset: bert-tiny
  num_hidden_layers: 2
  hidden_size: 64
  num_attention_heads: 2
  intermediate_size: 256
training:
  max_steps: 20
  per_device_batch_size: 16
  learning_rate: 1.0e-3
  save_steps: 10
  logging_steps: 5
  eval_steps: 0
resources:
  prep_pool: cpu
  train_pool: train
output:
  dir: model-out
)";

struct CliRun {
  int exit_code = -1;
  std::string output;
};

// The marker-less manifest of a pulled directory: what the artifact's sha256 covers.
std::string PulledSha(const fs::path& dir) {
  auto local = protocol::DescribeLocalArtifact(dir.string());
  if (!local.ok()) return "";
  std::vector<protocol::ManifestEntry> files;
  for (const auto& e : local->files) {
    if (e.relative_path != ".bertctl-pull") files.push_back(e);
  }
  return Sha256Hex(protocol::ManifestText(files));
}

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string missing = Cluster::Missing({"bertd", "bert-agent", "bert-worker", "bertctl"});
        !missing.empty()) {
      GTEST_SKIP() << "needs bertd, bert-agent, bert-worker and bertctl: " << missing;
    }
    c_ = std::make_unique<Cluster>("pull");
    const std::string dir = c_->dir();
    ASSERT_TRUE(WriteFileAtomically(dir + "/tokens", absl::StrCat(kAdmin, " admin alice\n", kViewer,
                                                                  " viewer bob\n", kAgent,
                                                                  " agent a*\n"))
                    .ok());
    for (const auto& [name, token] : {std::pair{"admin", kAdmin}, std::pair{"viewer", kViewer},
                                      std::pair{"agent", kAgent}}) {
      ASSERT_TRUE(WriteFileAtomically(dir + "/" + name + ".token", std::string(token) + "\n").ok());
    }
    ASSERT_TRUE(WriteFileAtomically(dir + "/unknown.token", "unknown-token-0123456789\n").ok());
    fs::create_directories(dir + "/laptop");
    fs::copy_file(Cluster::SourceDir() + "/tests/e2e/testdata/brown-1200.txt",
                  dir + "/laptop/brown-1200.txt");
    ASSERT_TRUE(WriteFileAtomically(dir + "/laptop/job.yaml", kSpec).ok());
  }

  // bertd (with `extra` flags) and one agent serving both pools, sharing no disk with it.
  void StartCluster(std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--tokens-file", c_->dir() + "/tokens"});
    c_->StartController(extra);
    c_->StartAgent("a-cpu", "cpu,train", /*shared_fs=*/false,
                   {"--token-file", c_->dir() + "/agent.token"});
  }

  // bertctl with `who`'s token, run in the "laptop" directory's parent; waits
  // up to `timeout` (killed past it).
  std::unique_ptr<testing::ChildProcess> Start(const std::string& who,
                                               std::vector<std::string> args) {
    std::vector<std::string> argv = {Cluster::BinDir() + "/bertctl"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--server", c_->ControllerTarget(), "--token-file",
                             c_->dir() + "/" + who + ".token"});
    return std::make_unique<testing::ChildProcess>(
        argv, c_->dir() + "/bertctl-" + std::to_string(++runs_) + ".log");
  }
  CliRun Bertctl(const std::string& who, std::vector<std::string> args,
              seconds timeout = seconds(60)) {
    auto process = Start(who, std::move(args));
    CliRun run;
    std::optional<int> status = process->WaitFor(timeout);
    if (!status) process->Kill();
    run.exit_code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    run.output = ReadFile(process->log_path()).value_or("");
    return run;
  }

  std::unique_ptr<Cluster> c_;
  int runs_ = 0;
};

TEST_F(PullTest, ModelLogsAndCheckpointsReachTheSubmittingMachine) {
  StartCluster();
  const std::string laptop = c_->dir() + "/laptop";
  // submit --watch pulls the model to output.dir (on this, the submitting,
  // machine: the agent works in a directory of its own).
  CliRun submit = Bertctl("admin", {"submit", laptop + "/job.yaml", "--watch", "--plain", "--upload",
                                 "never"},
                       seconds(300));
  ASSERT_EQ(submit.exit_code, 0) << submit.output << "\n" << c_->Logs();
  std::string job;
  for (absl::string_view line : absl::StrSplit(submit.output, '\n')) {
    if (absl::ConsumePrefix(&line, "submitted job ")) job = std::string(line.substr(0, line.find(' ')));
  }
  ASSERT_FALSE(job.empty()) << submit.output;
  const fs::path model = fs::path(laptop) / "model-out";
  ASSERT_TRUE(fs::exists(model / "config.json")) << submit.output;
  EXPECT_TRUE(fs::exists(model / "model.safetensors"));
  EXPECT_NE(submit.output.find("pulled model"), std::string::npos) << submit.output;

  // What bertd lists, and what each pulled directory verifies against.
  CliRun listed = Bertctl("viewer", {"pull", job, "checkpoints", "-o", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("checkpoint-10"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("checkpoint-20"), std::string::npos) << listed.output;

  // TensorBoard logs: a directory `tensorboard --logdir` reads.
  const fs::path logs = c_->dir() + "/tb";
  CliRun tb = Bertctl("viewer", {"pull", job, "tensorboard", "--to", logs.string(), "--plain"});
  ASSERT_EQ(tb.exit_code, 0) << tb.output << "\n" << c_->Logs();
  bool events = false;
  for (const auto& e : fs::recursive_directory_iterator(logs)) {
    if (absl::StartsWith(e.path().filename().string(), "events.out.tfevents.") &&
        fs::file_size(e.path()) > 0) {
      events = true;
    }
  }
  EXPECT_TRUE(events) << tb.output;
  // Pulled again: already there, nothing moved.
  CliRun again = Bertctl("viewer", {"pull", job, "tensorboard", "--to", logs.string()});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("already holds"), std::string::npos) << again.output;

  // A checkpoint.
  const fs::path checkpoint = c_->dir() + "/ckpt";
  CliRun ck = Bertctl("viewer", {"pull", job, "checkpoint-20", "--to", checkpoint.string()});
  ASSERT_EQ(ck.exit_code, 0) << ck.output;
  EXPECT_FALSE(PulledSha(checkpoint).empty());

  // An interrupted pull (rate-limited, killed mid-way) leaves nothing under
  // the final name and resumes from the bytes it held.
  const fs::path second = c_->dir() + "/model-2";
  const fs::path partial = c_->dir() + "/.model-2.bertctl-pull.partial";
  auto slow = Start("viewer", {"pull", job, "model", "--to", second.string(), "--limit-rate", "20k",
                               "--plain"});
  const auto until = std::chrono::steady_clock::now() + seconds(60);
  int64_t held = 0;
  while (std::chrono::steady_clock::now() < until && held == 0) {
    std::this_thread::sleep_for(milliseconds(50));
    for (const std::string& rel : protocol::ListManifestFiles(partial.string())) {
      std::error_code ec;
      held += static_cast<int64_t>(fs::file_size(partial / rel, ec));
    }
  }
  ASSERT_GT(held, 0) << ReadFile(slow->log_path()).value_or("");
  slow->Kill();
  EXPECT_FALSE(fs::exists(second));
  CliRun resumed = Bertctl("viewer", {"pull", job, "model", "--to", second.string(), "--plain"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed at"), std::string::npos) << resumed.output;
  EXPECT_EQ(PulledSha(second), PulledSha(model));
  EXPECT_FALSE(fs::exists(partial));

  // A directory holding files no pull wrote is left alone.
  const fs::path mine = c_->dir() + "/mine";
  fs::create_directories(mine);
  ASSERT_TRUE(WriteFileAtomically((mine / "notes.txt").string(), "keep me").ok());
  CliRun refused = Bertctl("viewer", {"pull", job, "--to", mine.string()});
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("holds files that no pull wrote"), std::string::npos)
      << refused.output;
  EXPECT_EQ(ReadFile((mine / "notes.txt").string()).value_or(""), "keep me");
  EXPECT_EQ(std::distance(fs::directory_iterator(mine), fs::directory_iterator()), 1);

  // Callers who may not view jobs: an agent's token (exit 5, permission
  // denied) and an unknown token.
  CliRun agent = Bertctl("agent", {"pull", job, "--to", c_->dir() + "/by-agent"});
  EXPECT_EQ(agent.exit_code, 5) << agent.output;
  CliRun unknown = Bertctl("unknown", {"pull", job, "--to", c_->dir() + "/by-unknown"});
  EXPECT_EQ(unknown.exit_code, 5) << unknown.output;
  EXPECT_FALSE(fs::exists(c_->dir() + "/by-agent"));
  EXPECT_FALSE(fs::exists(c_->dir() + "/by-unknown"));
  // An unknown artifact name says what the job has (exit 4, not found).
  CliRun missing = Bertctl("viewer", {"pull", job, "nothing"});
  EXPECT_EQ(missing.exit_code, 4) << missing.output;
  EXPECT_NE(missing.output.find("model"), std::string::npos) << missing.output;
}

// Where the operator declares a shared output root, an output.dir under it is
// written by the export agent, and submit --watch does not pull it.
TEST_F(PullTest, OutputDirUnderTheSharedOutputRootIsWrittenByTheExport) {
  const std::string shared = c_->dir() + "/shared-models";
  fs::create_directories(shared);
  StartCluster({"--shared-output-root", shared});
  const std::string spec = absl::StrReplaceAll(
      kSpec, {{"dir: model-out", "dir: " + shared + "/run-1"}, {"max_steps: 20", "max_steps: 10"}});
  ASSERT_TRUE(WriteFileAtomically(c_->dir() + "/laptop/shared.yaml", spec).ok());
  CliRun submit = Bertctl("admin", {"submit", c_->dir() + "/laptop/shared.yaml", "--watch",
                                    "--plain", "--upload", "never"},
                          seconds(300));
  ASSERT_EQ(submit.exit_code, 0) << submit.output << "\n" << c_->Logs();
  EXPECT_NE(submit.output.find("model written by the export to " + shared + "/run-1"),
            std::string::npos)
      << submit.output;
  EXPECT_TRUE(fs::exists(shared + "/run-1/model.safetensors"));
  EXPECT_TRUE(fs::exists(shared + "/run-1/.bertd-export"));   // the export's marker
  EXPECT_FALSE(fs::exists(shared + "/run-1/.bertctl-pull"));  // not pulled
}

}  // namespace
}  // namespace bert::e2e
