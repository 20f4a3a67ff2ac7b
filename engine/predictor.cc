#include "engine/predictor.h"

#include <filesystem>

#include "engine/bert_model.h"
#include "engine/engine_error.h"
#include "engine/hf_model_loader.h"
#include "tokenizer/tokenizer.h"

namespace bert::engine {
namespace {

tokenizer::Tokenizer LoadTokenizer(const std::string& dir) {
  auto loaded = tokenizer::Tokenizer::Load(dir);
  if (!loaded.ok()) throw EngineError(FailureCause::kDataError, std::string(loaded.status().message()));
  return *std::move(loaded);
}

}  // namespace

struct Predictor::State {
  BertForMaskedLM model;
  tokenizer::Tokenizer tokenizer;
};

Predictor::Predictor(const std::string& model_dir)
    : state_(new State{LoadHuggingFaceModel(model_dir), LoadTokenizer(model_dir)}) {}

Predictor::~Predictor() = default;

Prediction Predictor::Predict(const std::string& text, int top_k) {
  // The pieces between literal "[MASK]"s are tokenized on their own, so the mask
  // token survives whatever the normalizer does to brackets and case.
  static constexpr std::string_view kMask = "[MASK]";
  const auto& special = state_->tokenizer.special_ids();
  std::vector<int64_t> ids = {special.cls};
  std::vector<int64_t> mask_positions;
  size_t start = 0;
  while (true) {
    const size_t found = text.find(kMask, start);
    const std::string piece = text.substr(start, found == std::string::npos ? std::string::npos : found - start);
    std::vector<uint32_t> piece_ids;
    state_->tokenizer.AppendIds(piece, /*add_special_tokens=*/false, 0, &piece_ids);
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    if (found == std::string::npos) break;
    mask_positions.push_back(static_cast<int64_t>(ids.size()));
    ids.push_back(special.mask);
    start = found + kMask.size();
  }
  ids.push_back(special.sep);
  if (mask_positions.empty()) throw EngineError(FailureCause::kSpecError, "the text has no [MASK] to fill");
  const int64_t max_len = state_->model->config.max_position_embeddings;
  if (static_cast<int64_t>(ids.size()) > max_len) {
    throw EngineError(FailureCause::kSpecError, "the text is " + std::to_string(ids.size()) +
                                                    " tokens long; the model takes at most " + std::to_string(max_len));
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor input = torch::tensor(ids, torch::kInt64).unsqueeze(0);        // (1,T)
  const torch::Tensor positions = torch::tensor(mask_positions, torch::kInt64);      // (M)
  const torch::Tensor probs = torch::softmax(state_->model->MaskedLogits(input, positions), -1);  // (M,V)
  const auto [values, indices] = probs.topk(std::min<int64_t>(top_k, probs.size(1)), -1);  // (M,k)
  Prediction prediction;
  prediction.input_ids = ids;
  for (int64_t m = 0; m < positions.size(0); ++m) {
    MaskFill fill;
    fill.position = mask_positions[static_cast<size_t>(m)];
    for (int64_t k = 0; k < values.size(1); ++k) {
      const auto id = static_cast<uint32_t>(indices[m][k].item<int64_t>());
      fill.top.push_back({std::string(state_->tokenizer.IdToToken(id)), static_cast<int64_t>(id), values[m][k].item<double>()});
    }
    prediction.fills.push_back(std::move(fill));
  }
  return prediction;
}

}  // namespace bert::engine
