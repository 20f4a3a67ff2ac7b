// model.from, the job spec's warm start: which model a job starts from, and
// where the job's pieces find it. Written once for bertctl and bertd (the
// spec library checks the syntax), the controller (which resolves a job
// reference at submit and hands the artifact to the pipeline) and the agent
// (which finds that input among a piece's inputs).
//
// model.from is either a path (a Hugging Face BERT directory) or a reference
// to another job's model: "job:<id>" (its exported model) or
// "job:<id>/checkpoint-<step>" (one of its checkpoints).
//
// The parsing is header-only and standard-library-only (the spec library
// uses it); the artifact ids are in model_source.cc (bert_protocol).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/checkpoint_names.h"

namespace bert::protocol {

inline constexpr std::string_view kJobModelPrefix = "job:";

// Whether model.from names another job (rather than a path).
inline bool IsJobModelReference(std::string_view from) { return from.starts_with(kJobModelPrefix); }

struct JobModelReference {
  std::string job_id;
  std::optional<int64_t> checkpoint_step;  // nullopt: the job's exported model
};

// "job:<id>" or "job:<id>/checkpoint-<step>"; nullopt for anything else. The
// id is 1-128 characters of letters, digits, '-', '_' and '.' (not "." or "..").
inline std::optional<JobModelReference> ParseJobModelReference(std::string_view from) {
  if (!IsJobModelReference(from)) return std::nullopt;
  std::string_view rest = from.substr(kJobModelPrefix.size());
  JobModelReference ref;
  const size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    ref.checkpoint_step = ParseCheckpointStep(rest.substr(slash + 1));
    if (!ref.checkpoint_step) return std::nullopt;
    rest = rest.substr(0, slash);
  }
  if (rest.empty() || rest.size() > 128 || rest == "." || rest == "..") return std::nullopt;
  for (const char c : rest) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return std::nullopt;
  }
  ref.job_id = std::string(rest);
  return ref;
}

// The name of the artifact a job started from a path (model.from is a
// directory) records for it, under its own pretrain stage: "<job>/pretrain/warm-start".
inline constexpr std::string_view kWarmStartArtifact = "warm-start";

// The id of the artifact that holds the initial weights of job `job_id`
// whose spec says model.from = `from`: "<job_id>/pretrain/warm-start" for a
// path, "<id>/export/model" for "job:<id>", "<id>/pretrain/checkpoint-<step>"
// for "job:<id>/checkpoint-<step>"; "" when `from` is empty or malformed.
std::string WarmStartWeightsId(std::string_view job_id, std::string_view from);

}  // namespace bert::protocol
