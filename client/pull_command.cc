// bertctl pull JOB [NAME] --to DIR: fetches what a job produced (its model by
// default) through bertd, resumably and verified (client/artifact_pull.h).
#include "client/pull_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/artifact_pull.h"
#include "client/cli_context.h"
#include "client/input_uploader.h"
#include "client/text_format.h"
#include "protocol/checkpoint_names.h"
#include "protocol/output_dir.h"

namespace bert::client {
namespace {

// "2M", "512k", "1G" or plain bytes per second.
int64_t ParseRate(const std::string& text) {
  if (text.empty() || text == "0") return 0;
  int64_t unit = 1;
  std::string number = text;
  switch (text.back()) {
    case 'k': case 'K': unit = 1 << 10; number.pop_back(); break;
    case 'm': case 'M': unit = 1 << 20; number.pop_back(); break;
    case 'g': case 'G': unit = 1 << 30; number.pop_back(); break;
    default: break;
  }
  double value = 0;
  if (!absl::SimpleAtod(number, &value) || value < 0) {
    Fail(kExitUsage, absl::StrCat("--limit-rate '", text, "': expected bytes per second, e.g. 2M"));
  }
  return static_cast<int64_t>(value * static_cast<double>(unit));
}

void ListCheckpoints(const std::string& job_id, const std::vector<bert::v1::Artifact>& artifacts) {
  bert::v1::ListJobArtifactsResponse checkpoints;
  for (const bert::v1::Artifact& a : artifacts) {
    if (protocol::ParseCheckpointStep(a.name())) *checkpoints.add_artifacts() = a;
  }
  if (PrintStructured(checkpoints)) return;
  if (checkpoints.artifacts().empty()) {
    std::cout << "job " << job_id << " has no checkpoints that bertd holds" << std::endl;
    return;
  }
  std::cout << absl::StrFormat("%-24s %12s  %s\n", "NAME", "SIZE", "SHA256");
  for (const bert::v1::Artifact& a : checkpoints.artifacts()) {
    std::cout << absl::StrFormat("%-24s %12s  %s\n", a.name(), FormatBytes(a.size_bytes()),
                                 a.sha256().substr(0, 16));
  }
}

}  // namespace

void RunPull(const PullCommandOptions& options) {
  auto client = ConnectOrFail();
  const bool checkpoints = options.name == "checkpoints" ||
                           protocol::ParseCheckpointStep(options.name).has_value();
  // The artifact may change while it is pulled (TensorBoard logs of a job
  // that trains): a record that no longer matches is fetched again, anew.
  constexpr int kTries = 3;
  absl::Status last;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    auto listed = client->ListJobArtifacts(options.job_id, checkpoints);
    if (!listed.ok()) Fail(listed.status());
    std::vector<bert::v1::Artifact> artifacts(listed->artifacts().begin(),
                                              listed->artifacts().end());
    if (options.name == "checkpoints") return ListCheckpoints(options.job_id, artifacts);
    auto artifact = SelectArtifact(artifacts, options.job_id, options.name);
    if (!artifact.ok()) Fail(artifact.status());
    const std::string to =
        options.to.empty() ? absl::StrCat(options.job_id, "-", options.name) : options.to;

    TransferProgress progress(std::cerr, !options.plain && isatty(STDERR_FILENO) != 0);
    bool started = false;
    PullOptions pull;
    pull.limit_bytes_per_second = options.limit_rate;
    pull.progress = [&](int64_t have, int64_t total) {
      if (!started) {
        progress.Start("pulling", absl::StrCat(options.job_id, " ", artifact->name()), total, have);
        started = true;
      } else {
        progress.Update(have);
      }
    };
    auto result = PullInto(*client, options.job_id, *artifact, to, pull);
    if (result.ok()) {
      if (started) progress.Finish(result->already_there ? "already there" : "verified");
      if (PrintStructured(*artifact)) return;
      const std::string what = absl::StrCat(artifact->name(), " (", FormatBytes(artifact->size_bytes()),
                                            ", sha256 ", artifact->sha256().substr(0, 12), ")");
      if (result->already_there) {
        std::cout << result->path << " already holds " << what << std::endl;
      } else {
        std::cout << "pulled " << what << " to " << result->path
                  << (result->resumed_from > 0
                          ? absl::StrCat(" (resumed at ", FormatBytes(result->resumed_from), ")")
                          : "")
                  << std::endl;
      }
      return;
    }
    last = result.status();
    if (started) progress.Finish("interrupted");
    if (last.code() != absl::StatusCode::kDataLoss) break;
  }
  Fail(last);
}

void PullModelAfterWatch(BertClient& client, const std::string& job_id,
                         const std::string& pull_dir, const std::string& output_dir) {
  std::string to = pull_dir;
  if (to == "-") return;
  if (to.empty()) {
    if (output_dir.empty()) return;
    auto info = client.GetClusterInfo();  // UNIMPLEMENTED from an older bertd: no shared root
    const std::string root = info.ok() ? info->shared_output_root() : "";
    if (protocol::ExportWritesOutputDir(output_dir, root)) {
      if (!GlobalCli().structured()) {
        std::cout << "model written by the export to " << output_dir << " (under bertd's shared "
                  << "output root " << root << ")" << std::endl;
      }
      return;
    }
    to = output_dir;
  }
  PullCommandOptions options;
  options.job_id = job_id;
  options.to = to;
  RunPull(options);
}

void RegisterPullCommand(CLI::App& app) {
  static PullCommandOptions options;
  static std::string rate;
  CLI::App* command = app.add_subcommand(
      "pull", "fetch a job's model, tokenizer, dataset, TensorBoard logs or a checkpoint");
  command->add_option("job", options.job_id, "job id")->required();
  command->add_option("name", options.name,
                      "model (default), tokenizer, dataset, tensorboard, checkpoint-STEP, or "
                      "checkpoints to list them");
  command->add_option("--to", options.to,
                      "directory to write (new, empty, or an earlier pull of the same artifact; "
                      "default ./JOB-NAME)");
  command->add_option("--limit-rate", rate, "at most this many bytes per second (e.g. 2M)");
  command->add_flag("--plain", options.plain, "compact lines even on a terminal");
  command->callback([] {
    options.limit_rate = ParseRate(rate);
    RunPull(options);
  });
}

}  // namespace bert::client
