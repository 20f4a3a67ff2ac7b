// bertctl list, get, cancel, agents, checkpoints, metrics: one request each,
// printed as a table (text, or wide with more columns) or as the response's
// protobuf JSON or YAML (PrintStructured).
#include <algorithm>
#include <ctime>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli_context.h"
#include "client/job_command_impl.h"
#include "client/text_format.h"

namespace bert::client {
namespace {

bert::v1::State ParseState(const std::string& name) {
  bert::v1::State state;
  std::string upper;
  for (char c : name)
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (!bert::v1::State_Parse(upper, &state) || state == bert::v1::STATE_UNSPECIFIED) {
    Fail(kExitUsage, absl::StrCat("unknown state '", name,
                                  "' (queued, running, paused, succeeded, failed, cancelled)"));
  }
  return state;
}

// The stage a job is at: its running stage, else its last finished one.
std::string CurrentStage(const bert::v1::Job& job) {
  const bert::v1::Stage* current = nullptr;
  for (const bert::v1::Stage& stage : job.stages()) {
    if (stage.state() == bert::v1::RUNNING) return StageName(stage.kind());
    if (stage.state() != bert::v1::QUEUED) current = &stage;
  }
  return current == nullptr ? "-" : StageName(current->kind());
}

// Why the job waits when no live agent could ever run its queued stage
// (the scheduler's reason); "" otherwise.
std::string WaitingReason(const bert::v1::Job& job) {
  for (const bert::v1::Stage& stage : job.stages()) {
    if (!stage.waiting_reason().empty()) return stage.waiting_reason();
  }
  return "";
}

// list -o wide's extra columns.
struct WideJobColumns {
  std::string duration;  // running for, or ran for; "-" before the start
  std::string stages;    // "3/5": stages succeeded or skipped of all
  std::string attempts;  // attempts of every stage together
  std::string agents;    // the agents running its stages now, or "-"
};

WideJobColumns WideColumns(const bert::v1::Job& job) {
  WideJobColumns columns;
  if (job.started_at().seconds() > 0) {
    const int64_t end = job.finished_at().seconds() > 0 ? job.finished_at().seconds()
                                                        : static_cast<int64_t>(std::time(nullptr));
    columns.duration = FormatDuration(static_cast<double>(end - job.started_at().seconds()));
  } else {
    columns.duration = "-";
  }
  int done = 0;
  int attempts = 0;
  std::vector<std::string> agents;
  for (const bert::v1::Stage& stage : job.stages()) {
    if (stage.state() == bert::v1::SUCCEEDED || stage.state() == bert::v1::SKIPPED) ++done;
    attempts += stage.attempt();
    for (const std::string& agent : stage.agent_ids()) {
      if (std::find(agents.begin(), agents.end(), agent) == agents.end()) agents.push_back(agent);
    }
  }
  columns.stages = absl::StrCat(done, "/", job.stages_size());
  columns.attempts = absl::StrCat(attempts);
  columns.agents = agents.empty() ? "-" : absl::StrJoin(agents, ",");
  return columns;
}

// "8 cpu, 31.4G mem, 2 cuda (NVIDIA H100)".
std::string Resources(const bert::v1::AgentResources& resources) {
  std::string out = absl::StrCat(resources.cpu_cores(), " cpu, ",
                                 FormatCount(static_cast<double>(resources.memory_bytes())), "B mem");
  if (resources.accelerator_count() > 0) {
    std::string kind = absl::AsciiStrToLower(bert::v1::AcceleratorKind_Name(resources.accelerator()));
    absl::StrAppend(&out, ", ", resources.accelerator_count(), " ", kind);
    if (!resources.accelerator_name().empty()) absl::StrAppend(&out, " (", resources.accelerator_name(), ")");
  }
  return out;
}

std::string Percent(const bert::v1::Progress& progress) {
  if (progress.total() <= 0) return "";
  return absl::StrFormat("%d%%", progress.done() * 100 / progress.total());
}

void PrintJob(const bert::v1::Job& job) {
  std::cout << "job        " << job.id() << " (" << job.name() << ")\n"
            << "state      " << StateName(job.state());
  if (job.cancel_requested() && job.state() == bert::v1::RUNNING) std::cout << " (cancelling)";
  if (job.pause_requested() && job.state() != bert::v1::PAUSED) std::cout << " (pausing)";
  if (job.delete_requested()) std::cout << " (deleting)";
  if (job.failure_cause() != bert::v1::FAILURE_CAUSE_UNSPECIFIED) {
    std::cout << " " << CauseName(job.failure_cause()) << ": " << job.failure_message();
  }
  std::cout << "\n";
  if (const std::string waiting = WaitingReason(job); !waiting.empty()) {
    std::cout << "waiting    " << waiting << "\n";
  }
  if (!job.submitted_by().empty()) std::cout << "submitted  " << job.submitted_by() << "\n";
  if (job.user_retries() > 0) std::cout << "retries    " << job.user_retries() << "\n";
  std::cout << "created    " << FormatTime(job.created_at()) << "\n";
  if (job.started_at().seconds() > 0)
    std::cout << "started    " << FormatTime(job.started_at()) << "\n";
  if (job.finished_at().seconds() > 0) {
    std::cout << "finished   " << FormatTime(job.finished_at()) << " (after "
              << FormatDuration(
                     static_cast<double>(job.finished_at().seconds() - job.started_at().seconds()))
              << ")\n";
  }
  std::cout << "stages\n";
  for (const bert::v1::Stage& stage : job.stages()) {
    std::string line =
        absl::StrFormat("  %-10s %-9s", StageName(stage.kind()), StateName(stage.state()));
    if (stage.attempt() > 0)
      absl::StrAppend(&line,
                      absl::StrFormat(" attempt %d/%d", stage.attempt(), stage.max_attempts()));
    if (stage.shard_count() > 1) {
      absl::StrAppend(&line,
                      absl::StrFormat(" shards %d/%d", stage.shards_done(), stage.shard_count()));
    }
    if (stage.progress().done() > 0) {
      absl::StrAppend(&line, "  ", FormatProgressCounts(stage.progress()), " ",
                      Percent(stage.progress()));
    }
    if (stage.state() == bert::v1::RUNNING && stage.progress().eta_seconds() >= 0 &&
        stage.progress().total() > 0) {
      absl::StrAppend(&line, "  ETA ", FormatDuration(stage.progress().eta_seconds()));
    }
    if (!stage.agent_ids().empty())
      absl::StrAppend(&line, "  on ", absl::StrJoin(stage.agent_ids(), ","));
    if (stage.failure_cause() != bert::v1::FAILURE_CAUSE_UNSPECIFIED) {
      absl::StrAppend(&line, "  ", CauseName(stage.failure_cause()), ": ", stage.failure_message());
    }
    if (!stage.waiting_reason().empty()) absl::StrAppend(&line, "  waiting: ", stage.waiting_reason());
    std::cout << absl::StripTrailingAsciiWhitespace(line) << "\n";
    for (const bert::v1::Artifact& artifact : stage.outputs()) {
      std::cout << "             -> " << artifact.name() << " " << artifact.uri() << "\n";
    }
  }
  if (!job.latest_metrics().empty()) {
    std::cout << "metrics\n";
    std::map<std::string, double> sorted(job.latest_metrics().begin(), job.latest_metrics().end());
    for (const auto& [name, value] : sorted) {
      std::cout << absl::StrFormat("  %-26s %.6g\n", name, value);
    }
  }
}

}  // namespace

void RunList(const ListOptions& options) {
  bert::v1::ListJobsRequest request;
  for (const std::string& state : options.states) request.add_states(ParseState(state));
  request.set_name_prefix(options.name_prefix);
  for (const std::string& label : options.labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.first.empty())
      Fail(kExitUsage, absl::StrCat("--label wants KEY=VALUE, got '", label, "'"));
    (*request.mutable_labels())[kv.first] = kv.second;
  }
  request.set_page_size(options.page_size);
  auto client = ConnectOrFail();
  bert::v1::ListJobsResponse all;
  while (true) {
    auto page = client->ListJobs(request);
    if (!page.ok()) Fail(page.status());
    for (auto& job : *page->mutable_jobs()) *all.add_jobs() = std::move(job);
    all.set_next_page_token(page->next_page_token());
    if (!options.all || page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  if (PrintStructured(all)) return;
  const bool wide = GlobalCli().wide();
  std::cout << absl::StrFormat("%-26s %-24s %-10s %-11s %-5s %s", "ID", "NAME", "STATE", "STAGE",
                               "", wide ? "CREATED            " : "CREATED");
  if (wide) {
    std::cout << absl::StrFormat(" %-9s %-8s %-9s %s", "DURATION", "STAGES", "ATTEMPTS", "AGENT");
  }
  std::cout << "\n";
  int waiting = 0;
  for (const bert::v1::Job& job : all.jobs()) {
    std::string progress;
    for (const bert::v1::Stage& stage : job.stages()) {
      if (stage.state() == bert::v1::RUNNING) progress = Percent(stage.progress());
    }
    // A job no live agent could run shows as waiting (its state stays queued
    // or running; `bertctl get` says why).
    const bool stuck = !WaitingReason(job).empty();
    waiting += stuck ? 1 : 0;
    std::cout << absl::StrFormat("%-26s %-24s %-10s %-11s %-5s %s", job.id(), job.name(),
                                 stuck                    ? "waiting"
                                 : job.delete_requested() ? "deleting"
                                 : job.pause_requested() && job.state() != bert::v1::PAUSED
                                     ? "pausing"
                                     : StateName(job.state()),
                                 CurrentStage(job),
                                 progress, FormatTime(job.created_at()));
    if (wide) {
      const WideJobColumns columns = WideColumns(job);
      std::cout << absl::StrFormat(" %-9s %-8s %-9s %s", columns.duration, columns.stages,
                                   columns.attempts, columns.agents);
    }
    std::cout << "\n";
  }
  if (waiting > 0) {
    std::cout << "(waiting: no live agent could run " << (waiting == 1 ? "it" : "them")
              << "; bertctl get ID says what is missing)\n";
  }
  if (!all.next_page_token().empty()) std::cout << "(more: use --all)\n";
}

void RunGet(const std::string& job_id) {
  auto job = ConnectOrFail()->GetJob(job_id);
  if (!job.ok()) Fail(job.status());
  if (!PrintStructured(*job)) PrintJob(*job);
}

void RunCancel(const std::string& job_id, const std::string& reason) {
  auto job = ConnectOrFail()->CancelJob(job_id, reason);
  if (!job.ok()) Fail(job.status());
  if (!PrintStructured(*job)) {
    std::cout << "job " << job->id() << ": " << StateName(job->state())
              << (job->state() == bert::v1::CANCELLED ? "" : " (cancel requested)") << "\n";
  }
}

void RunAgents(const std::string& pool) {
  auto response = ConnectOrFail()->ListAgents(pool);
  if (!response.ok()) Fail(response.status());
  if (PrintStructured(*response)) return;
  const bool wide = GlobalCli().wide();
  std::cout << absl::StrFormat("%-24s %-20s %-14s %-8s %-20s %s", "ID", "HOST", "POOLS", "HEALTHY",
                               "LAST HEARTBEAT", wide ? "ASSIGNMENTS" : "ASSIGNMENTS\n");
  if (wide) {
    std::cout << absl::StrFormat(" %-36s %-10s %-20s %s\n", "RESOURCES", "VERSION", "REGISTERED",
                                 "LABELS");
  }
  for (const bert::v1::AgentInfo& agent : response->agents()) {
    std::cout << absl::StrFormat("%-24s %-20s %-14s %-8s %-20s %-11d", agent.id(), agent.hostname(),
                                 absl::StrJoin(agent.pools(), ","), agent.healthy() ? "yes" : "no",
                                 FormatTime(agent.last_heartbeat()), agent.assignment_ids_size());
    if (wide) {
      std::map<std::string, std::string> labels(agent.labels().begin(), agent.labels().end());
      std::cout << absl::StrFormat(" %-36s %-10s %-20s %s", Resources(agent.resources()),
                                   agent.version().empty() ? "-" : agent.version(),
                                   FormatTime(agent.registered_at()),
                                   labels.empty() ? "-" : absl::StrJoin(labels, ",",
                                                                        absl::PairFormatter("=")));
    }
    std::cout << "\n";
  }
}

void RunCheckpoints(const std::string& job_id) {
  auto response = ConnectOrFail()->ListCheckpoints(job_id);
  if (!response.ok()) Fail(response.status());
  if (PrintStructured(*response)) return;
  const bool wide = GlobalCli().wide();
  std::cout << absl::StrFormat("%-8s %-10s %-9s %-20s %s", "STEP", "LOSS", "SIZE", "CREATED",
                               wide ? absl::StrFormat("%-64s %s", "SHA256", "URI") : "URI")
            << "\n";
  for (const bert::v1::CheckpointRecord& checkpoint : response->checkpoints()) {
    auto loss = checkpoint.metrics().find("train/loss");
    std::cout << absl::StrFormat(
        "%-8d %-10s %-9s %-20s %s\n", checkpoint.step(),
        loss == checkpoint.metrics().end() ? "-" : absl::StrFormat("%.4f", loss->second),
        FormatCount(static_cast<double>(checkpoint.artifact().size_bytes())) + "B",
        FormatTime(checkpoint.created_at()),
        wide ? absl::StrFormat("%-64s %s", checkpoint.artifact().sha256(), checkpoint.artifact().uri())
             : checkpoint.artifact().uri());
  }
}

void RunMetrics(const std::string& job_id, const std::vector<std::string>& names) {
  auto response = ConnectOrFail()->GetMetrics(job_id, names);
  if (!response.ok()) Fail(response.status());
  if (PrintStructured(*response)) return;
  for (const bert::v1::MetricSeries& series : response->series()) {
    std::vector<double> values;
    for (const auto& point : series.points()) values.push_back(point.value());
    std::cout << series.name() << " (" << series.points_size() << " points)  "
              << Sparkline(values, 60) << "\n";
    std::cout << absl::StrFormat("  %-8s %-14s %s\n", "STEP", "VALUE", "TIME");
    for (const bert::v1::MetricPoint& point : series.points()) {
      std::cout << absl::StrFormat("  %-8d %-14.6g %s\n", point.step(), point.value(),
                                   FormatTime(point.time()));
    }
  }
}

}  // namespace bert::client
