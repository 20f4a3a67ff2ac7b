#include "client/watch_view.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/text_format.h"

namespace bert::client {
namespace {

bool Terminal(bert::v1::State state) {
  return state == bert::v1::SUCCEEDED || state == bert::v1::FAILED ||
         state == bert::v1::CANCELLED || state == bert::v1::SKIPPED;
}

int Percent(const bert::v1::Progress& progress) {
  if (progress.total() <= 0) return -1;
  return static_cast<int>(std::clamp<int64_t>(progress.done() * 100 / progress.total(), 0, 100));
}

}  // namespace

WatchView::WatchView(bool unicode, int bar_width) : unicode_(unicode), bar_width_(bar_width) {}

void WatchView::Reset(const bert::v1::Job& job) {
  job_id_ = job.id();
  job_name_ = job.name();
  job_state_ = job.state();
  job_failure_ = job.failure_message();
  order_.clear();
  stages_.clear();
  for (const bert::v1::Stage& stage : job.stages()) {
    StageView& view = Stage(stage.kind());
    view.state = stage.state();
    view.attempt = stage.attempt();
    view.progress = stage.progress();
    view.started_at = stage.started_at().seconds();
    view.finished_at = stage.finished_at().seconds();
    view.failure = stage.failure_message();
  }
  latest_ = {job.latest_metrics().begin(), job.latest_metrics().end()};
}

WatchView::StageView& WatchView::Stage(bert::v1::StageKind kind) {
  auto it = stages_.find(kind);
  if (it != stages_.end()) return it->second;
  order_.push_back(kind);
  std::sort(order_.begin(), order_.end());
  return stages_[kind];
}

bool WatchView::finished() const { return Terminal(job_state_) && job_state_ != bert::v1::SKIPPED; }

std::vector<std::string> WatchView::Apply(const bert::v1::Event& event) {
  std::vector<std::string> lines;
  const int64_t now = event.time().seconds();
  switch (event.body_case()) {
    case bert::v1::Event::kJob: {
      const bert::v1::JobTransition& t = event.job();
      job_state_ = t.to();
      std::string line = absl::StrCat("job ", StateName(t.to()));
      if (t.failure_cause() != bert::v1::FAILURE_CAUSE_UNSPECIFIED) {
        absl::StrAppend(&line, " (", CauseName(t.failure_cause()), ")");
        job_failure_ = t.message();
      }
      if (!t.message().empty()) absl::StrAppend(&line, ": ", t.message());
      lines.push_back(line);
      break;
    }
    case bert::v1::Event::kStage: {
      const bert::v1::StageTransition& t = event.stage();
      StageView& stage = Stage(t.stage());
      stage.state = t.to();
      stage.attempt = t.attempt();
      if (t.to() == bert::v1::RUNNING) {
        stage.started_at = now;
        stage.last_printed_decile = -1;
      }
      if (Terminal(t.to())) stage.finished_at = now;
      std::string line = absl::StrCat(StageName(t.stage()), " ", StateName(t.to()));
      if (t.attempt() > 1) absl::StrAppend(&line, " (attempt ", t.attempt(), ")");
      if (t.failure_cause() != bert::v1::FAILURE_CAUSE_UNSPECIFIED) {
        absl::StrAppend(&line, " ", CauseName(t.failure_cause()));
        stage.failure = t.message();
      }
      if (t.to() == bert::v1::SUCCEEDED && stage.started_at > 0 && now >= stage.started_at) {
        absl::StrAppend(&line, " in ", FormatDuration(static_cast<double>(now - stage.started_at)));
      }
      if (!t.message().empty()) absl::StrAppend(&line, ": ", t.message());
      lines.push_back(line);
      break;
    }
    case bert::v1::Event::kProgress: {
      StageView& stage = Stage(event.progress().stage());
      stage.progress = event.progress().progress();
      if (stage.state == bert::v1::QUEUED) stage.state = bert::v1::RUNNING;
      const int percent = Percent(stage.progress);
      if (percent >= 0 && percent / 10 > stage.last_printed_decile) {
        stage.last_printed_decile = percent / 10;
        std::string line = absl::StrCat(StageName(event.progress().stage()), " ", percent, "% ",
                                        FormatProgressCounts(stage.progress));
        if (stage.progress.rate_per_second() > 0) {
          absl::StrAppend(&line, " ", FormatCount(stage.progress.rate_per_second()), " ",
                          stage.progress.unit(), "/s");
        }
        if (stage.progress.eta_seconds() >= 0 && percent < 100) {
          absl::StrAppend(&line, " ETA ", FormatDuration(stage.progress.eta_seconds()));
        }
        lines.push_back(line);
      }
      break;
    }
    case bert::v1::Event::kMetric: {
      const bert::v1::MetricPoint& metric = event.metric();
      latest_[metric.name()] = metric.value();
      if (metric.name() == "train/loss") {
        if (metric.step() > loss_step_ || metric.step() < 0) {
          losses_.push_back(metric.value());
          loss_step_ = metric.step();
        }
        std::string line = absl::StrFormat("step %d loss %.4f", metric.step(), metric.value());
        auto lr = latest_.find("train/learning_rate");
        if (lr != latest_.end()) absl::StrAppend(&line, absl::StrFormat(" lr %.3g", lr->second));
        lines.push_back(line);
      } else if (metric.name().rfind("eval/", 0) == 0) {
        lines.push_back(
            absl::StrFormat("step %d %s %.4f", metric.step(), metric.name(), metric.value()));
      }
      break;
    }
    case bert::v1::Event::kCheckpoint: {
      const bert::v1::CheckpointRecord& checkpoint = event.checkpoint();
      lines.push_back(
          absl::StrCat("checkpoint step ", checkpoint.step(), " ", checkpoint.artifact().uri()));
      break;
    }
    case bert::v1::Event::kLog: {
      const bert::v1::LogLine& log = event.log();
      lines.push_back(absl::StrCat(StageName(log.stage()), " ", log.level(), ": ", log.message()));
      break;
    }
    default:
      break;
  }
  return lines;
}

std::string WatchView::StageLine(bert::v1::StageKind kind, const StageView& stage) const {
  std::string line = absl::StrFormat("  %-10s %-9s", StageName(kind), StateName(stage.state));
  const bert::v1::Progress& progress = stage.progress;
  if (stage.state == bert::v1::RUNNING) {
    const int percent = Percent(progress);
    if (percent >= 0) {
      absl::StrAppend(&line, " ",
                      ProgressBar(progress.done(), progress.total(), bar_width_, unicode_),
                      absl::StrFormat(" %3d%%", percent));
    }
    if (progress.done() > 0 || progress.total() > 0) {
      absl::StrAppend(&line, "  ", FormatProgressCounts(progress));
    }
    if (progress.rate_per_second() > 0) {
      absl::StrAppend(&line, "  ", FormatCount(progress.rate_per_second()), " ", progress.unit(),
                      "/s");
    }
    if (progress.eta_seconds() >= 0 && percent >= 0 && percent < 100) {
      absl::StrAppend(&line, "  ETA ", FormatDuration(progress.eta_seconds()));
    }
    if (stage.attempt > 1) absl::StrAppend(&line, "  (attempt ", stage.attempt, ")");
  } else if (stage.state == bert::v1::SUCCEEDED) {
    if (progress.done() > 0) absl::StrAppend(&line, " ", FormatProgressCounts(progress));
    if (stage.started_at > 0 && stage.finished_at >= stage.started_at) {
      absl::StrAppend(&line, " in ",
                      FormatDuration(static_cast<double>(stage.finished_at - stage.started_at)));
    }
  } else if (stage.state == bert::v1::FAILED && !stage.failure.empty()) {
    absl::StrAppend(&line, " ", stage.failure);
  }
  return std::string(absl::StripTrailingAsciiWhitespace(line));
}

std::vector<std::string> WatchView::Panel() const {
  std::vector<std::string> lines;
  std::string header = absl::StrCat("job ", job_id_);
  if (!job_name_.empty()) absl::StrAppend(&header, " (", job_name_, ")");
  absl::StrAppend(&header, " ", StateName(job_state_));
  if (!job_failure_.empty() && job_state_ == bert::v1::FAILED) {
    absl::StrAppend(&header, ": ", job_failure_);
  }
  lines.push_back(header);
  for (bert::v1::StageKind kind : order_) lines.push_back(StageLine(kind, stages_.at(kind)));
  if (!losses_.empty()) {
    std::string loss = absl::StrFormat("  loss %.4f  %s  (step %d)", losses_.back(),
                                       unicode_ ? Sparkline(losses_, 40) : "", loss_step_);
    auto eval = latest_.find("eval/loss");
    if (eval != latest_.end())
      absl::StrAppend(&loss, absl::StrFormat("  eval loss %.4f", eval->second));
    lines.push_back(loss);
  }
  return lines;
}

}  // namespace bert::client
