// bertctl list, get, cancel, agents, checkpoints, metrics: one request each,
// printed as a table (text) or as the response's protobuf JSON.
#include <iostream>
#include <string>

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
                                  "' (queued, running, succeeded, failed, cancelled)"));
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

std::string Percent(const bert::v1::Progress& progress) {
  if (progress.total() <= 0) return "";
  return absl::StrFormat("%d%%", progress.done() * 100 / progress.total());
}

void PrintJob(const bert::v1::Job& job) {
  std::cout << "job        " << job.id() << " (" << job.name() << ")\n"
            << "state      " << StateName(job.state());
  if (job.cancel_requested() && job.state() == bert::v1::RUNNING) std::cout << " (cancelling)";
  if (job.failure_cause() != bert::v1::FAILURE_CAUSE_UNSPECIFIED) {
    std::cout << " " << CauseName(job.failure_cause()) << ": " << job.failure_message();
  }
  std::cout << "\n";
  if (const std::string waiting = WaitingReason(job); !waiting.empty()) {
    std::cout << "waiting    " << waiting << "\n";
  }
  if (!job.submitted_by().empty()) std::cout << "submitted  " << job.submitted_by() << "\n";
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
  if (GlobalCli().json()) {
    std::cout << ToJson(all);
    return;
  }
  std::cout << absl::StrFormat("%-26s %-24s %-10s %-11s %-5s %s\n", "ID", "NAME", "STATE", "STAGE",
                               "", "CREATED");
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
    std::cout << absl::StrFormat("%-26s %-24s %-10s %-11s %-5s %s\n", job.id(), job.name(),
                                 stuck ? "waiting" : StateName(job.state()), CurrentStage(job),
                                 progress, FormatTime(job.created_at()));
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
  if (GlobalCli().json()) {
    std::cout << ToJson(*job);
  } else {
    PrintJob(*job);
  }
}

void RunCancel(const std::string& job_id, const std::string& reason) {
  auto job = ConnectOrFail()->CancelJob(job_id, reason);
  if (!job.ok()) Fail(job.status());
  if (GlobalCli().json()) {
    std::cout << ToJson(*job);
  } else {
    std::cout << "job " << job->id() << ": " << StateName(job->state())
              << (job->state() == bert::v1::CANCELLED ? "" : " (cancel requested)") << "\n";
  }
}

void RunAgents(const std::string& pool) {
  auto response = ConnectOrFail()->ListAgents(pool);
  if (!response.ok()) Fail(response.status());
  if (GlobalCli().json()) {
    std::cout << ToJson(*response);
    return;
  }
  std::cout << absl::StrFormat("%-24s %-20s %-14s %-8s %-20s %s\n", "ID", "HOST", "POOLS",
                               "HEALTHY", "LAST HEARTBEAT", "ASSIGNMENTS");
  for (const bert::v1::AgentInfo& agent : response->agents()) {
    std::cout << absl::StrFormat("%-24s %-20s %-14s %-8s %-20s %d\n", agent.id(), agent.hostname(),
                                 absl::StrJoin(agent.pools(), ","), agent.healthy() ? "yes" : "no",
                                 FormatTime(agent.last_heartbeat()), agent.assignment_ids_size());
  }
}

void RunCheckpoints(const std::string& job_id) {
  auto response = ConnectOrFail()->ListCheckpoints(job_id);
  if (!response.ok()) Fail(response.status());
  if (GlobalCli().json()) {
    std::cout << ToJson(*response);
    return;
  }
  std::cout << absl::StrFormat("%-8s %-10s %-9s %-20s %s\n", "STEP", "LOSS", "SIZE", "CREATED",
                               "URI");
  for (const bert::v1::CheckpointRecord& checkpoint : response->checkpoints()) {
    auto loss = checkpoint.metrics().find("train/loss");
    std::cout << absl::StrFormat(
        "%-8d %-10s %-9s %-20s %s\n", checkpoint.step(),
        loss == checkpoint.metrics().end() ? "-" : absl::StrFormat("%.4f", loss->second),
        FormatCount(static_cast<double>(checkpoint.artifact().size_bytes())) + "B",
        FormatTime(checkpoint.created_at()), checkpoint.artifact().uri());
  }
}

void RunMetrics(const std::string& job_id, const std::vector<std::string>& names) {
  auto response = ConnectOrFail()->GetMetrics(job_id, names);
  if (!response.ok()) Fail(response.status());
  if (GlobalCli().json()) {
    std::cout << ToJson(*response);
    return;
  }
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
