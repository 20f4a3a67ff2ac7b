#include "agent/worker_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/failure.h"
#include "agent/subprocess.h"
#include "nlohmann/json.hpp"
#include "protocol/checkpoint_names.h"

namespace bert::agent {
namespace {

using Clock = std::chrono::steady_clock;

// What the worker said about its own outcome.
struct WorkerResult {
  bool ok = false;
  v1::FailureCause cause = v1::WORKER_CRASHED;
  std::string message;
};

// Splits a byte stream into lines.
class LineSplitter {
 public:
  template <typename F>
  void Feed(const char* data, size_t n, F&& on_line) {
    buffer_.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      on_line(std::string_view(buffer_).substr(start, nl - start));
    }
    buffer_.erase(0, start);
  }
  template <typename F>
  void Finish(F&& on_line) {
    if (!buffer_.empty()) on_line(std::string_view(buffer_));
    buffer_.clear();
  }

 private:
  std::string buffer_;
};

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t Int(const nlohmann::json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : fallback;
}

class WorkerSession {
 public:
  explicit WorkerSession(StageReporter& reporter) : reporter_(reporter) {}

  void OnStdoutLine(std::string_view line) {
    if (line.empty()) return;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      // Not a report: the protocol says stdout carries only JSON lines; keep it as a log.
      reporter_.Log("info", line);
      return;
    }
    const std::string type = Str(j, "type");
    if (type == "progress") {
      reporter_.Progress(Int(j, "done", 0), Int(j, "total", 0), Str(j, "unit"));
    } else if (type == "metric") {
      auto value = j.find("value");
      if (value != j.end() && value->is_number()) {
        reporter_.Metric(Str(j, "name"), value->get<double>(), Int(j, "step", -1));
      }
    } else if (type == "log") {
      std::string level = Str(j, "level");
      reporter_.Log(level.empty() ? "info" : level, Str(j, "message"));
    } else if (type == "checkpoint") {
      v1::CheckpointRecord record;
      record.set_step(Int(j, "step", 0));
      v1::Artifact* a = record.mutable_artifact();
      a->set_name(protocol::CheckpointDirName(record.step()));
      a->set_uri(absl::StrCat("file://", Str(j, "path")));
      a->set_size_bytes(Int(j, "size_bytes", 0));
      a->set_sha256(Str(j, "sha256"));
      a->set_is_directory(true);
      a->set_produced_by(v1::PRETRAIN);
      if (auto m = j.find("metrics"); m != j.end() && m->is_object()) {
        for (auto& [k, v] : m->items()) {
          if (v.is_number()) (*record.mutable_metrics())[k] = v.get<double>();
        }
      }
      reporter_.Checkpoint(record);
    } else if (type == "result") {
      WorkerResult r;
      auto ok = j.find("ok");
      r.ok = ok != j.end() && ok->is_boolean() && ok->get<bool>();
      r.message = Str(j, "message");
      v1::FailureCause cause;
      if (v1::FailureCause_Parse(Str(j, "failure_cause"), &cause)) r.cause = cause;
      result_ = r;
    } else {
      reporter_.Log("info", line);
    }
  }

  void OnStderrLine(std::string_view line) {
    if (line.empty()) return;
    reporter_.Log("info", line);
    stderr_tail_.emplace_back(line);
    if (stderr_tail_.size() > 5) stderr_tail_.pop_front();
  }

  const std::optional<WorkerResult>& result() const { return result_; }
  std::string StderrTail() const { return absl::StrJoin(stderr_tail_, " | "); }

 private:
  StageReporter& reporter_;
  std::optional<WorkerResult> result_;
  std::deque<std::string> stderr_tail_;
};

}  // namespace

absl::Status RunWorker(const WorkerOptions& options, StageReporter& reporter) {
  if (reporter.Cancelled()) return StageFailure(v1::CANCELLED_BY_USER, "cancelled before start");
  SubprocessOptions sub;
  sub.argv = options.argv;
  sub.extra_env = options.extra_env;
  auto child_or = Subprocess::Start(sub);
  if (!child_or.ok()) {
    return StageFailure(v1::INTERNAL,
                        absl::StrCat("cannot start worker: ", child_or.status().message()));
  }
  std::unique_ptr<Subprocess> child = std::move(*child_or);
  WorkerSession session(reporter);
  LineSplitter out_lines, err_lines;
  bool spoke = false;  // a first stdout line: its signal handlers are installed
  auto on_out = [&](std::string_view l) {
    spoke = true;
    session.OnStdoutLine(l);
  };
  auto on_err = [&](std::string_view l) { session.OnStderrLine(l); };

  bool cancelled = false;
  bool pausing = false;
  bool killed = false;
  Clock::time_point kill_at;
  char buf[65536];
  while (true) {
    if (!cancelled && reporter.Cancelled()) {
      cancelled = true;
      child->SignalGroup(SIGTERM);
      kill_at = Clock::now() + options.cancel_grace;
    }
    if (!cancelled && !pausing && spoke && reporter.PauseRequested()) {
      // Only the worker itself: it checkpoints at the step reached and exits
      // with a PAUSED_BY_USER result (docs/worker-protocol.md).
      pausing = true;
      kill(child->pid(), SIGUSR1);
    }
    if (cancelled && !killed && Clock::now() >= kill_at) {
      child->SignalGroup(SIGKILL);
      killed = true;
    }
    if (child->stdout_fd() < 0 && child->stderr_fd() < 0) {
      // Both pipes closed: wait for the exit, still honouring cancellation.
      if (child->TryWait()) break;
      usleep(static_cast<useconds_t>(options.poll_interval.count()) * 1000 / 4 + 1000);
      continue;
    }
    pollfd fds[2];
    nfds_t n = 0;
    if (child->stdout_fd() >= 0) fds[n++] = {child->stdout_fd(), POLLIN, 0};
    if (child->stderr_fd() >= 0) fds[n++] = {child->stderr_fd(), POLLIN, 0};
    int r = poll(fds, n, static_cast<int>(options.poll_interval.count()));
    if (r < 0 && errno != EINTR) break;
    for (nfds_t i = 0; i < n && r > 0; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const bool is_out = fds[i].fd == child->stdout_fd();
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        if (is_out) {
          out_lines.Feed(buf, static_cast<size_t>(got), on_out);
        } else {
          err_lines.Feed(buf, static_cast<size_t>(got), on_err);
        }
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (is_out) {
          out_lines.Finish(on_out);
          child->CloseStdout();
        } else {
          err_lines.Finish(on_err);
          child->CloseStderr();
        }
      }
    }
  }
  const int status = child->Wait();
  // Whatever the leader did, nothing of its group may outlive the stage.
  child->SignalGroup(SIGKILL);

  if (cancelled) return StageFailure(v1::CANCELLED_BY_USER, "stage cancelled; worker stopped");
  const auto& result = session.result();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    if (result && !result->ok) return StageFailure(result->cause, result->message);
    return absl::OkStatus();
  }
  if (result && !result->ok) return StageFailure(result->cause, result->message);
  std::string tail = session.StderrTail();
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGKILL) {
      return StageFailure(v1::OUT_OF_MEMORY,
                          absl::StrCat("worker killed by SIGKILL (likely out of memory)",
                                       tail.empty() ? "" : ": ", tail));
    }
    return StageFailure(v1::WORKER_CRASHED,
                        absl::StrCat("worker killed by signal ", sig, " (", strsignal(sig), ")",
                                     tail.empty() ? "" : ": ", tail));
  }
  return StageFailure(v1::WORKER_CRASHED,
                      absl::StrCat("worker exited with status ", WEXITSTATUS(status),
                                   tail.empty() ? "" : ": ", tail));
}

}  // namespace bert::agent
