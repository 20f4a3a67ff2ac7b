// RegisterJobCommands: bertctl's job verbs and their flags. The bodies live in
// spec_commands.cc, job_queries.cc and watch_command.cc.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "client/commands.h"
#include "client/job_command_impl.h"
#include "protocol/stage_names.h"

namespace bert::client {
namespace {

// What `logs --stage` accepts: every stage's name, and "job" for job-wide lines.
std::vector<std::string> LogStageNames() {
  std::vector<std::string> names;
  for (bert::v1::StageKind kind : protocol::PipelineStages())
    names.push_back(protocol::StageName(kind));
  names.push_back("job");
  return names;
}

void AddSpecFileOptions(CLI::App* command, SpecFileOptions* options) {
  command->add_option("file", options->file, "job spec (YAML); '-' reads stdin")->required();
  command->add_flag("!--no-check-paths", options->check_paths,
                    "do not check that sources and tokenizer/dataset paths exist here");
}

}  // namespace

void RegisterJobCommands(CLI::App& app) {
  // Option storage lives as long as the process (callbacks run after parsing).
  static SpecFileOptions validate;
  static SubmitOptions submit;
  static ListOptions list;
  static std::string job_id;
  static std::string reason;
  static std::string pool;
  static std::vector<std::string> metric_names;
  static WatchCommandOptions watch;
  static LogsOptions logs;

  CLI::App* command = app.add_subcommand("validate", "check a job spec without a server");
  AddSpecFileOptions(command, &validate);
  command->add_flag("--remote", validate.remote, "also have bertd validate it (its view of paths)");
  command->callback([] { RunValidate(validate); });

  command = app.add_subcommand("submit", "validate a job spec locally, then queue it on bertd");
  AddSpecFileOptions(command, &submit.spec);
  command->add_option("--idempotency-key", submit.idempotency_key,
                      "resubmitting with the same key returns the same job");
  command->add_flag("--watch,-w", submit.watch, "follow the job until it finishes");
  command->add_flag("--plain", submit.plain, "with --watch: plain lines even on a terminal");
  command
      ->add_option("--upload", submit.upload,
                   "corpus files: auto (upload those the cluster's agents cannot see), always, "
                   "never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  command->add_option("--pull", submit.pull,
                      "with --watch: pull the model here when the job succeeds (default: the "
                      "spec's output.dir unless under bertd's shared output root; '-': no pull)");
  command->callback([] { RunSubmit(submit); });

  command = app.add_subcommand("list", "list jobs, newest first");
  command->add_option("--state", list.states, "only jobs in this state (repeatable)");
  command->add_option("--prefix", list.name_prefix, "only jobs whose name starts with this");
  command->add_option("--label", list.labels, "only jobs with this KEY=VALUE label (repeatable)");
  command->add_option("--limit", list.page_size, "jobs per page")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command->add_flag("--all", list.all, "fetch every page");
  command->callback([] { RunList(list); });

  command = app.add_subcommand("get", "show a job: state, stages, artifacts, latest metrics");
  command->add_option("job", job_id, "job id")->required();
  command->callback([] { RunGet(job_id); });

  command = app.add_subcommand("watch", "follow a job live: progress per stage, rate, ETA, loss");
  command->add_option("job", watch.job_id, "job id")->required();
  command->add_flag("!--no-follow", watch.follow, "print what happened so far and exit");
  command->add_flag("--plain", watch.plain, "plain lines even on a terminal");
  command
      ->add_option("--reconnect-timeout", watch.reconnect_timeout_s,
                   "seconds to keep reconnecting a broken stream before giving up (exit 3)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->callback([] { RunWatch(watch); });

  command = app.add_subcommand("logs", "print a job's log lines");
  command->add_option("job", logs.job_id, "job id")->required();
  command->add_flag("--follow,-f", logs.follow, "keep printing new lines until the job ends");
  command->add_option("--stage", logs.stage, "only this stage's lines")
      ->check(CLI::IsMember(LogStageNames()));
  command
      ->add_option("--reconnect-timeout", logs.reconnect_timeout_s,
                   "with -f: seconds to keep reconnecting a broken stream before giving up (exit 3)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->callback([] { RunLogs(logs); });

  command = app.add_subcommand("cancel", "cancel a queued or running job");
  command->add_option("job", job_id, "job id")->required();
  command->add_option("--reason", reason, "recorded with the cancellation");
  command->callback([] { RunCancel(job_id, reason); });

  command = app.add_subcommand("agents", "list the agents bertd knows");
  command->add_option("--pool", pool, "only agents serving this pool");
  command->callback([] { RunAgents(pool); });

  command = app.add_subcommand("checkpoints", "list a job's checkpoints");
  command->add_option("job", job_id, "job id")->required();
  command->callback([] { RunCheckpoints(job_id); });

  command = app.add_subcommand("metrics", "print a job's metric series (loss, learning rate, ...)");
  command->add_option("job", job_id, "job id")->required();
  command->add_option("--name", metric_names, "only this metric, e.g. train/loss (repeatable)");
  command->callback([] { RunMetrics(job_id, metric_names); });
}

}  // namespace bert::client
