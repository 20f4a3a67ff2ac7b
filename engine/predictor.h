// Fill-mask prediction for bert-worker predict: the top-k tokens, with their
// probabilities, for each [MASK] in a text, from an exported model directory.
// A Predictor is not thread-safe (one forward at a time). No libtorch in this header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bert::engine {

struct TokenScore {
  std::string token;
  int64_t id = 0;
  double score = 0;  // probability
};

struct MaskFill {
  int64_t position = 0;         // index of the [MASK] in the encoded sequence
  std::vector<TokenScore> top;  // best first
};

struct Prediction {
  std::vector<int64_t> input_ids;  // [CLS] ... [SEP], as the model saw them
  std::vector<MaskFill> fills;     // one per [MASK], in order
};

class Predictor {
 public:
  // Loads model_dir (config.json, model.safetensors, tokenizer.json or vocab.txt).
  // Throws EngineError on a bad directory.
  explicit Predictor(const std::string& model_dir);
  ~Predictor();

  // Every "[MASK]" in `text` (written literally) is one prediction, in order.
  // Throws EngineError(kSpecError) when the text has no [MASK].
  Prediction Predict(const std::string& text, int top_k);

 private:
  struct State;  // the model and the tokenizer
  std::unique_ptr<State> state_;
};

}  // namespace bert::engine
