// WatchView: what `bertctl watch` shows of a job as its events arrive.
//
// On a terminal, a panel redrawn in place: one progress bar per stage with
// rate and ETA, and a line with the latest loss (and its sparkline) and the
// latest held-out loss and accuracy. Elsewhere (pipes, logs, CI), a compact
// log: transitions, logs, checkpoints, losses, one line per evaluation, and
// progress every 10% of a stage, each line prefixed by the time since the job
// started (Elapsed) rather than a date, and with absolute paths shortened to
// their last two components (ShortenPaths).
// Pure (no I/O, no clock: times come from the events), so tests drive it
// directly. Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bert/v1/job.pb.h"

namespace bert::client {

class WatchView {
 public:
  // `unicode`: draw bars and sparklines with block characters.
  explicit WatchView(bool unicode = true, int bar_width = 24);

  // Starts from a job's current state (GetJob), before its events.
  void Reset(const bert::v1::Job& job);
  // Applies one event; returns the plain lines it is worth (possibly none).
  std::vector<std::string> Apply(const bert::v1::Event& event);
  // The panel: a header line, one line per stage, and a loss line once there
  // is a loss. Lines end without '\n'.
  std::vector<std::string> Panel() const;

  // The time of `event` since the job was created (or, before Reset, since
  // the first event applied), as "m:ss" or "h:mm:ss", padded to 5 columns.
  std::string Elapsed(const bert::v1::Event& event) const;

  bert::v1::State job_state() const { return job_state_; }
  bool finished() const;
  const std::vector<double>& losses() const { return losses_; }

 private:
  struct StageView {
    bert::v1::State state = bert::v1::QUEUED;
    int32_t attempt = 0;
    bert::v1::Progress progress;
    int last_printed_decile = -1;  // plain mode: progress printed per 10%
    int64_t started_at = 0;        // seconds, from the events' times
    int64_t finished_at = 0;
    std::string failure;
  };

  StageView& Stage(bert::v1::StageKind kind);
  std::string StageLine(bert::v1::StageKind kind, const StageView& stage) const;

  bool unicode_;
  int bar_width_;
  std::string job_id_;
  std::string job_name_;
  bert::v1::State job_state_ = bert::v1::QUEUED;
  std::string job_failure_;
  std::vector<bert::v1::StageKind> order_;  // pipeline order
  std::map<bert::v1::StageKind, StageView> stages_;
  std::vector<double> losses_;  // train/loss, in step order
  int64_t loss_step_ = -1;
  std::map<std::string, double> latest_;  // newest value of each metric
  std::map<std::string, int64_t> latest_step_;  // and the step it was reported at
  int64_t origin_seconds_ = 0;  // Elapsed counts from here; 0: not yet known
};

// Each whitespace-separated word of `text` that is an absolute path (or a
// file:// URI) of three or more components, cut to ".../" and its last two
// ("/srv/bertd/artifacts/j-1/pretrain/checkpoint-100" -> ".../pretrain/checkpoint-100").
std::string ShortenPaths(const std::string& text);

}  // namespace bert::client
