// bertctl watch and logs: follow a job's event stream and draw it. A broken
// stream is resumed after the last event seen (nothing twice, nothing
// missed), with a line on stderr per try, for --reconnect-timeout seconds;
// then exit code 3.
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_context.h"
#include "client/job_command_impl.h"
#include "client/text_format.h"
#include "client/watch_view.h"

namespace bert::client {
namespace {

int TerminalColumns() {
  winsize size{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 100;
}

// Redraws the panel in place: cursor up over the previous panel, clear to
// the end of the screen, print lines that scroll above it, then the panel.
class PanelPrinter {
 public:
  void Draw(const std::vector<std::string>& scrolled, const std::vector<std::string>& panel) {
    std::string out;
    if (drawn_ > 0) absl::StrAppend(&out, "\x1b[", drawn_, "F\x1b[J");
    const int columns = TerminalColumns() - 1;
    for (const std::string& line : scrolled) absl::StrAppend(&out, line, "\n");
    for (const std::string& line : panel)
      absl::StrAppend(&out, TruncateColumns(line, columns), "\n");
    drawn_ = static_cast<int>(panel.size());
    std::cout << out << std::flush;
  }

 private:
  int drawn_ = 0;
};

// Says on stderr that the stream broke and when it is tried again.
void SayReconnecting(const std::string& job_id, const absl::Status& error, int64_t wait_ms,
                     int64_t last_seq, int timeout_s) {
  std::cerr << "bertctl: lost the event stream of job " << job_id << " ("
            << absl::StatusCodeToString(error.code()) << ": " << error.message()
            << "); reconnecting in " << absl::StrFormat("%.1fs", static_cast<double>(wait_ms) / 1000.0)
            << " after event " << last_seq << " (giving up after " << FormatDuration(timeout_s)
            << ")" << std::endl;
}

WatchOptions Reconnecting(const std::string& job_id, bool follow, int timeout_s) {
  WatchOptions watch;
  watch.follow = follow;
  watch.reconnect_timeout_ms = static_cast<int64_t>(timeout_s) * 1000;
  watch.on_reconnect = [job_id, timeout_s](const absl::Status& error, int64_t wait_ms,
                                           int64_t last_seq) {
    SayReconnecting(job_id, error, wait_ms, last_seq, timeout_s);
  };
  return watch;
}

int ExitCodeForJob(bert::v1::State state) {
  return state == bert::v1::SUCCEEDED ? kExitOk : kExitFailure;
}

}  // namespace

void RunWatch(const WatchCommandOptions& options) {
  auto client = ConnectOrFail();
  auto job = client->GetJob(options.job_id);
  if (!job.ok()) Fail(job.status());
  const bool structured = GlobalCli().structured();
  const bool live = !structured && !options.plain && isatty(STDOUT_FILENO);
  WatchView view(/*unicode=*/live);
  view.Reset(*job);
  PanelPrinter printer;
  std::vector<std::string> pending;  // live mode: lines to scroll above the panel
  auto last_draw = std::chrono::steady_clock::time_point{};

  WatchOptions watch = Reconnecting(options.job_id, options.follow, options.reconnect_timeout_s);
  // Live panels replay the history (to fill bars and the sparkline) but only
  // scroll the lines of what happens from now on.
  const int64_t history_end = job->last_event_seq();
  absl::Status status = client->WatchJob(options.job_id, watch, [&](const bert::v1::Event& event) {
    std::vector<std::string> lines = view.Apply(event);
    if (PrintStructuredItem(event)) return true;
    if (!live) {
      for (const std::string& line : lines) {
        std::cout << view.Elapsed(event) << "  " << line << "\n";
      }
      std::cout << std::flush;
      return true;
    }
    const bool important = event.has_log() && event.log().level() != "info";
    if (event.seq() > history_end || important) {
      for (std::string& line : lines) {
        if (event.has_progress()) continue;  // the bars show progress
        pending.push_back(std::move(line));
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (event.seq() >= history_end && now - last_draw > std::chrono::milliseconds(100)) {
      printer.Draw(pending, view.Panel());
      pending.clear();
      last_draw = now;
    }
    return true;
  });
  if (live) printer.Draw(pending, view.Panel());
  if (!status.ok()) Fail(status);
  if (!options.follow) return;
  // The stream ends when the job finishes; its state decides the exit code.
  bert::v1::State state = view.job_state();
  if (!view.finished()) {
    auto final_job = client->GetJob(options.job_id);
    if (final_job.ok()) state = final_job->state();
  }
  if (!structured && !live) std::cout << "job " << options.job_id << " " << StateName(state) << std::endl;
  if (ExitCodeForJob(state) != kExitOk) ExitWith(ExitCodeForJob(state));
}

void RunLogs(const LogsOptions& options) {
  auto client = ConnectOrFail();
  WatchOptions watch = Reconnecting(options.job_id, options.follow, options.reconnect_timeout_s);
  absl::Status status = client->WatchJob(options.job_id, watch, [&](const bert::v1::Event& event) {
    if (!event.has_log()) return true;
    const bert::v1::LogLine& log = event.log();
    if (!options.stage.empty() && StageName(log.stage()) != options.stage) return true;
    if (!PrintStructuredItem(log)) {
      if (GlobalCli().wide()) std::cout << "#" << event.seq() << " ";  // the event's seq
      std::cout << FormatTime(event.time()) << " " << StageName(log.stage()) << " " << log.level()
                << (log.agent_id().empty() ? "" : absl::StrCat(" [", log.agent_id(), "]")) << ": "
                << log.message() << "\n";
    }
    std::cout << std::flush;
    return true;
  });
  if (!status.ok()) Fail(status);
}

}  // namespace bert::client
