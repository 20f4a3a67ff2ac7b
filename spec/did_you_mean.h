// "did you mean ...?" suggestions for misspelt or foreign (Hugging Face) keys.
#pragma once

#include <string>
#include <vector>

namespace bert::spec {

// The candidate closest to `key` (edit distance at most 2, or a third of its length,
// and at most 3), or the field a known Hugging Face argument name maps to
// ("per_device_train_batch_size" -> "per_device_batch_size"); "" when none.
std::string SuggestKey(const std::string& key, const std::vector<std::string>& candidates);

// Edit distance (insertions, deletions, substitutions), case-insensitive.
int EditDistance(const std::string& a, const std::string& b);

}  // namespace bert::spec
