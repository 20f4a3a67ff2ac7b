// How a long-running piece of work (a stage, or part of one) reports back.
//
// Libraries that do the work (tokenizer training, corpus preparation, packing)
// take a ProgressSink& and know nothing of agents, gRPC or Prometheus; the agent
// adapts it to its reports. Implementations must be thread-safe: work running
// on several threads may report concurrently.
#pragma once

#include <cstdint>
#include <string_view>

namespace bert {

class ProgressSink {
 public:
  virtual ~ProgressSink() = default;

  // `done` of `total` units ("bytes", "lines", "tokens", "steps"); total 0 if unknown.
  virtual void Progress(int64_t done, int64_t total, std::string_view unit) = 0;
  // A scalar metric, e.g. ("train/loss", 2.31, step 1200). step -1 if not applicable.
  virtual void Metric(std::string_view name, double value, int64_t step) = 0;
  // A human-readable log line. level: "info", "warning" or "error".
  virtual void Log(std::string_view level, std::string_view message) = 0;
  // True once the work should stop as soon as it safely can.
  virtual bool Cancelled() const = 0;
};

// Discards everything; never cancelled. For tools and tests that do not report.
class NullProgressSink final : public ProgressSink {
 public:
  void Progress(int64_t, int64_t, std::string_view) override {}
  void Metric(std::string_view, double, int64_t) override {}
  void Log(std::string_view, std::string_view) override {}
  bool Cancelled() const override { return false; }
};

}  // namespace bert
