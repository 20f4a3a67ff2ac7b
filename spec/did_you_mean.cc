#include "spec/did_you_mean.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace bert::spec {
namespace {

// Names users bring from Hugging Face's TrainingArguments, tokenizers and the
// article, mapped to this spec's field names.
const std::map<std::string, std::string>& ForeignNames() {
  static const auto* names = new std::map<std::string, std::string>{
      {"per_device_train_batch_size", "per_device_batch_size"},
      {"train_batch_size", "per_device_batch_size"},
      {"batch_size", "per_device_batch_size"},
      {"lr", "learning_rate"},
      {"fp16", "precision"},
      {"bf16", "precision"},
      {"model_max_length", "max_seq_length"},
      {"max_length", "max_seq_length"},
      {"seq_len", "max_seq_length"},
      {"block_size", "max_seq_length"},
      {"lowercase_text", "lowercase"},
      {"do_lower_case", "lowercase"},
      {"model_config_id", "preset"},
      {"tokenizer_id", "from"},
      {"dataset_id", "from_dataset"},
      {"output_dir", "dir"},
      {"save_strategy", "save_steps"},
      {"logging_strategy", "logging_steps"},
      {"evaluation_strategy", "eval_steps"},
      {"vocab", "vocab_size"},
      {"source", "sources"},
      {"path", "paths"},
      {"files", "paths"},
  };
  return *names;
}

}  // namespace

int EditDistance(const std::string& a, const std::string& b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int above = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string SuggestKey(const std::string& key, const std::vector<std::string>& candidates) {
  auto foreign = ForeignNames().find(key);
  if (foreign != ForeignNames().end() &&
      std::find(candidates.begin(), candidates.end(), foreign->second) != candidates.end()) {
    return foreign->second;
  }
  const int limit = std::min<int>(3, std::max<int>(2, (static_cast<int>(key.size()) + 2) / 3));
  std::string best;
  int best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const int distance = EditDistance(key, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

}  // namespace bert::spec
