// bertctl retry, pause, resume, delete: a job's lifecycle verbs, one request
// each (JobService RetryJob, PauseJob, ResumeJob, DeleteJob). Allowed for the
// job's submitter and admins.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "client/commands.h"
#include "client/text_format.h"

namespace bert::client {
namespace {

void PrintJobState(const bert::v1::Job& job, const std::string& note) {
  if (PrintStructured(job)) return;
  std::cout << "job " << job.id() << ": " << StateName(job.state());
  if (job.pause_requested() && job.state() != bert::v1::PAUSED) std::cout << " (pausing)";
  if (!note.empty()) std::cout << "; " << note;
  std::cout << "\n";
}

void RunRetry(const std::string& job_id) {
  auto job = ConnectOrFail()->RetryJob(job_id);
  if (!job.ok()) Fail(job.status());
  PrintJobState(*job, absl::StrCat("retry ", job->user_retries(),
                                   ": finished stages kept, pre-training continues from its "
                                   "newest checkpoint"));
}

void RunPause(const std::string& job_id, const std::string& reason) {
  auto job = ConnectOrFail()->PauseJob(job_id, reason);
  if (!job.ok()) Fail(job.status());
  PrintJobState(*job, job->state() == bert::v1::PAUSED
                          ? "no devices held; `bertctl resume` continues it"
                          : "pre-training writes a checkpoint and stops, running data stages "
                            "finish; then the job is paused");
}

void RunResume(const std::string& job_id) {
  auto job = ConnectOrFail()->ResumeJob(job_id);
  if (!job.ok()) Fail(job.status());
  PrintJobState(*job, "continues where it paused");
}

// Asks on the terminal; false unless the answer is y or yes.
bool Confirm(const std::string& question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
  return answer == "y" || answer == "yes";
}

void RunDelete(const std::string& job_id, bool yes) {
  std::unique_ptr<BertClient> client = ConnectOrFail();
  if (!yes) {
    if (!::isatty(STDIN_FILENO)) {
      Fail(kExitUsage, "delete: stdin is not a terminal to confirm on; pass --yes");
    }
    auto job = client->GetJob(job_id);
    if (!job.ok()) Fail(job.status());
    if (!Confirm(absl::StrCat("delete job ", job->id(), " (", job->name(), ", ",
                              StateName(job->state()),
                              ") with its events, metrics, checkpoints and model files?"))) {
      Fail(kExitFailure, absl::StrCat("job ", job_id, " not deleted"));
    }
  }
  auto deleted = client->DeleteJob(job_id);
  if (!deleted.ok()) Fail(deleted.status());
  if (PrintStructured(*deleted)) return;
  std::cout << "deleted job " << deleted->job_id() << ": " << deleted->files_deleted() << " files, "
            << FormatCount(static_cast<double>(deleted->bytes_freed())) << "B freed\n";
}

}  // namespace

void RegisterLifecycleCommands(CLI::App& app) {
  static std::string job_id;
  static std::string reason;
  static bool yes = false;

  CLI::App* command = app.add_subcommand(
      "retry",
      "run a failed or cancelled job again: finished stages are kept, pre-training "
      "continues from its newest checkpoint");
  command->add_option("job", job_id, "job id")->required();
  command->callback([] { RunRetry(job_id); });

  command = app.add_subcommand(
      "pause", "pause a job: pre-training writes a checkpoint and releases its devices");
  command->add_option("job", job_id, "job id")->required();
  command->add_option("--reason", reason, "recorded with the pause");
  command->callback([] { RunPause(job_id, reason); });

  command = app.add_subcommand("resume", "continue a paused job exactly where it stopped");
  command->add_option("job", job_id, "job id")->required();
  command->callback([] { RunResume(job_id); });

  command = app.add_subcommand(
      "delete", "delete a finished or paused job: its records, events, checkpoints and files");
  command->add_option("job", job_id, "job id")->required();
  command->add_flag("--yes,-y", yes, "do not ask for confirmation");
  command->callback([] { RunDelete(job_id, yes); });
}

}  // namespace bert::client
