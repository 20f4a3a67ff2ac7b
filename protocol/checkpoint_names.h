// The names of training checkpoints, written once: the directory
// "checkpoint-<step>" that bert-worker writes under output_dir/checkpoints, the
// artifact the agent reports and the controller keeps under the same name, and
// the hidden ".checkpoint-<step>.tmp" a checkpoint is written into before it is
// renamed into place. Header-only, standard library only (the standalone
// engine build includes it without linking anything).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bert::protocol {

inline constexpr std::string_view kCheckpointPrefix = "checkpoint-";

// "checkpoint-<step>", e.g. "checkpoint-500".
inline std::string CheckpointDirName(int64_t step) {
  return std::string(kCheckpointPrefix) + std::to_string(step);
}

// The step of a "checkpoint-<step>" name: decimal digits only, no sign, no
// other characters; nullopt for anything else (including temporary names).
inline std::optional<int64_t> ParseCheckpointStep(std::string_view name) {
  if (!name.starts_with(kCheckpointPrefix)) return std::nullopt;
  const std::string_view digits = name.substr(kCheckpointPrefix.size());
  if (digits.empty()) return std::nullopt;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int64_t step = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  // Digits only, so the one failure left is a step beyond int64.
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return step;
}

// The temporary directory a checkpoint of `step` is written into: ".checkpoint-<step>.tmp".
inline std::string CheckpointTempDirName(int64_t step) {
  return "." + CheckpointDirName(step) + ".tmp";
}

// Whether `name` is a temporary checkpoint directory (a stale one is removed on pruning).
inline bool IsCheckpointTempDirName(std::string_view name) {
  return name.starts_with(".") && name.substr(1).starts_with(kCheckpointPrefix) &&
         name.ends_with(".tmp");
}

}  // namespace bert::protocol
