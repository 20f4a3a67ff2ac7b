#include "client/watch_view.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
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
  if (job.created_at().seconds() > 0) origin_seconds_ = job.created_at().seconds();
}

std::string WatchView::Elapsed(const bert::v1::Event& event) const {
  const int64_t origin = origin_seconds_ > 0 ? origin_seconds_ : event.time().seconds();
  const int64_t seconds = std::max<int64_t>(0, event.time().seconds() - origin);
  if (seconds >= 3600) {
    return absl::StrFormat("%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
  }
  return absl::StrFormat("%2d:%02d", seconds / 60, seconds % 60);
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
  if (origin_seconds_ == 0 && now > 0) origin_seconds_ = now;
  switch (event.body_case()) {
    case bert::v1::Event::kJob: {
      const bert::v1::JobTransition& t = event.job();
      job_state_ = t.to();
      std::string line = absl::StrCat("job ", StateName(t.to()));
      if (t.failure_cause() != bert::v1::FAILURE_CAUSE_UNSPECIFIED) {
        absl::StrAppend(&line, " (", CauseName(t.failure_cause()), ")");
        job_failure_ = t.message();
      }
      if (!t.message().empty()) absl::StrAppend(&line, ": ", ShortenPaths(t.message()));
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
      if (!t.message().empty()) absl::StrAppend(&line, ": ", ShortenPaths(t.message()));
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
      latest_step_[metric.name()] = metric.step();
      if (metric.name() == "train/loss") {
        if (metric.step() > loss_step_ || metric.step() < 0) {
          losses_.push_back(metric.value());
          loss_step_ = metric.step();
        }
        std::string line = absl::StrFormat("step %d loss %.4f", metric.step(), metric.value());
        // The learning rate only when it is this step's (the worker reports it after the loss).
        auto lr = latest_.find("train/learning_rate");
        if (lr != latest_.end() && latest_step_["train/learning_rate"] == metric.step()) {
          absl::StrAppend(&line, absl::StrFormat(" lr %.3g", lr->second));
        }
        lines.push_back(line);
      } else if (metric.name() == "eval/accuracy") {
        // One line per evaluation: the worker reports its loss just before.
        std::string line = absl::StrFormat("step %d eval", metric.step());
        auto loss = latest_.find("eval/loss");
        if (loss != latest_.end() && latest_step_["eval/loss"] == metric.step()) {
          absl::StrAppend(&line, absl::StrFormat(" loss %.4f", loss->second));
        }
        absl::StrAppend(&line, absl::StrFormat(" accuracy %.1f%%", 100 * metric.value()));
        lines.push_back(line);
      }
      break;
    }
    case bert::v1::Event::kCheckpoint: {
      const bert::v1::CheckpointRecord& checkpoint = event.checkpoint();
      lines.push_back(absl::StrCat("checkpoint step ", checkpoint.step(), " ",
                                   ShortenPaths(checkpoint.artifact().uri())));
      break;
    }
    case bert::v1::Event::kLog: {
      const bert::v1::LogLine& log = event.log();
      lines.push_back(
          absl::StrCat(StageName(log.stage()), " ", log.level(), ": ", ShortenPaths(log.message())));
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
    auto accuracy = latest_.find("eval/accuracy");
    if (accuracy != latest_.end())
      absl::StrAppend(&loss, absl::StrFormat("  accuracy %.1f%%", 100 * accuracy->second));
    lines.push_back(loss);
  }
  return lines;
}

std::string ShortenPaths(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t end = std::min(text.find_first_of(" \t\n", i), text.size());
    absl::string_view word(text.data() + i, end - i);
    absl::string_view path = word;
    if (absl::StartsWith(path, "file://")) path.remove_prefix(7);
    const size_t slashes = static_cast<size_t>(std::count(path.begin(), path.end(), '/'));
    if (absl::StartsWith(path, "/") && slashes >= 3) {
      absl::string_view trimmed = path;
      while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.remove_suffix(1);
      const size_t last = trimmed.rfind('/');
      const size_t parent = last == 0 ? 0 : trimmed.rfind('/', last - 1);
      absl::StrAppend(&out, "...", trimmed.substr(parent));
    } else {
      absl::StrAppend(&out, word);
    }
    if (end < text.size()) out.push_back(text[end]);
    i = end + 1;
  }
  return out;
}

}  // namespace bert::client
