// EngineError: the one exception type the engine throws for bad input or state.
//
// The engine depends only on libtorch and the standard library, so it reports
// errors the way libtorch does, by throwing; bert-worker catches at its
// boundary and turns the cause into a `result` report (bert.v1.FailureCause).
#pragma once

#include <stdexcept>
#include <string>

namespace bert::engine {

// Names match bert.v1.FailureCause.
enum class FailureCause { kSpecError, kDataError, kArtifactCorrupt, kOutOfMemory, kInternal };

inline const char* FailureCauseName(FailureCause cause) {
  switch (cause) {
    case FailureCause::kSpecError: return "SPEC_ERROR";
    case FailureCause::kDataError: return "DATA_ERROR";
    case FailureCause::kArtifactCorrupt: return "ARTIFACT_CORRUPT";
    case FailureCause::kOutOfMemory: return "OUT_OF_MEMORY";
    case FailureCause::kInternal: return "INTERNAL";
  }
  return "INTERNAL";
}

class EngineError : public std::runtime_error {
 public:
  EngineError(FailureCause cause, const std::string& message)
      : std::runtime_error(message), cause_(cause) {}
  FailureCause cause() const { return cause_; }

 private:
  FailureCause cause_;
};

}  // namespace bert::engine
