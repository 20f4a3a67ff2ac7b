#include "engine/worker_reporter.h"

#include <cmath>
#include <nlohmann/json.hpp>

#if defined(BERT_WITH_TENSORBOARD)
#include "metrics/tensorboard_writer.h"
#endif

namespace bert::metrics {
#if !defined(BERT_WITH_TENSORBOARD)
class TensorBoardWriter {};
#endif
}  // namespace bert::metrics

namespace bert::engine {

WorkerReporter::WorkerReporter(std::FILE* out, const std::atomic<bool>* cancelled,
                               const std::atomic<bool>* paused)
    : out_(out), cancelled_(cancelled), paused_(paused) {}

WorkerReporter::~WorkerReporter() = default;

void WorkerReporter::EnableTensorBoard(const std::string& dir) {
#if defined(BERT_WITH_TENSORBOARD)
  tensorboard_ = std::make_unique<metrics::TensorBoardWriter>(dir);
  if (!tensorboard_->ok()) OnLog("warning", "TensorBoard events disabled: " + tensorboard_->error());
#else
  (void)dir;
#endif
}

void WorkerReporter::Emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  std::fputs(line.c_str(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void WorkerReporter::OnProgress(int64_t step, int64_t max_steps) {
  if (!primary_) return;
  Emit(nlohmann::json{{"type", "progress"}, {"done", step}, {"total", max_steps}, {"unit", "steps"}}.dump());
}

void WorkerReporter::OnMetric(const std::string& name, double value, int64_t step) {
  if (!primary_) return;
  // JSON has no NaN or infinity: a diverged loss is reported as null.
  nlohmann::json v = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  Emit(nlohmann::json{{"type", "metric"}, {"name", name}, {"value", v}, {"step", step}}.dump());
#if defined(BERT_WITH_TENSORBOARD)
  if (tensorboard_) {
    tensorboard_->AddScalar(name, value, step);
    tensorboard_->Flush();
  }
#endif
}

void WorkerReporter::OnLog(const std::string& level, const std::string& message) {
  Emit(nlohmann::json{{"type", "log"}, {"level", level}, {"message", message}}.dump());
}

void WorkerReporter::OnCheckpoint(const WrittenCheckpoint& c) {
  Emit(nlohmann::json{{"type", "checkpoint"},
                      {"step", c.step},
                      {"path", c.path},
                      {"size_bytes", c.size_bytes},
                      {"sha256", c.manifest_sha256}}
           .dump());
}

void WorkerReporter::Result(bool ok, const std::string& failure_cause, const std::string& message) {
  nlohmann::json j = {{"type", "result"}, {"ok", ok}};
  if (!ok) j["failure_cause"] = failure_cause;
  if (!message.empty()) j["message"] = message;
  Emit(j.dump());
}

}  // namespace bert::engine
