// BertForMaskedLM in libtorch, with Hugging Face's architecture, parameter
// names and initialisation, so that its state dict maps one to one onto
// transformers' BertForMaskedLM.
//
// Dimension letters: B batch, T sequence length, C hidden size, H heads,
// D = C / H head size, I intermediate size, V vocabulary, M masked positions.
// Modules are not thread-safe; one training thread drives a model.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "engine/bert_config.h"

namespace bert::engine {

// word + position + token-type embeddings, LayerNorm, dropout.
struct BertEmbeddingsImpl : torch::nn::Module {
  explicit BertEmbeddingsImpl(const BertConfig& config);
  // input_ids (B,T) int64, token_type_ids (B,T) or undefined (all 0) -> (B,T,C)
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids);

  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr},
      token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double dropout_p;
};
TORCH_MODULE(BertEmbeddings);

// Multi-head self-attention (attention.self.{query,key,value}).
struct BertSelfAttentionImpl : torch::nn::Module {
  explicit BertSelfAttentionImpl(const BertConfig& config);
  // x (B,T,C), mask_bias (B,1,1,T) additive or undefined -> (B,T,C)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask_bias);

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  int64_t heads, head_size;
  double dropout_p;
};
TORCH_MODULE(BertSelfAttention);

// A dense projection, dropout, then LayerNorm of (projection + residual): post-LN.
struct BertResidualOutputImpl : torch::nn::Module {
  BertResidualOutputImpl(int64_t in, int64_t out, const BertConfig& config);
  // x (B,T,in), residual (B,T,out) -> (B,T,out)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double dropout_p;
};
TORCH_MODULE(BertResidualOutput);

struct BertAttentionImpl : torch::nn::Module {
  explicit BertAttentionImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask_bias);

  BertSelfAttention self{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

// intermediate.dense + GELU
struct BertIntermediateImpl : torch::nn::Module {
  explicit BertIntermediateImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // (B,T,C) -> (B,T,I)
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

struct BertLayerImpl : torch::nn::Module {
  explicit BertLayerImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask_bias);  // (B,T,C)

  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

struct BertModelImpl : torch::nn::Module {
  explicit BertModelImpl(const BertConfig& config);
  // input_ids (B,T), attention_mask (B,T) 1 = token, 0 = padding, or undefined
  // (no padding) -> (B,T,C)
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask);

  BertEmbeddings embeddings{nullptr};
  std::shared_ptr<torch::nn::Module> encoder;  // holds the ModuleList "layer"
  torch::nn::ModuleList layers{nullptr};       // encoder.layer.{i}
};
TORCH_MODULE(BertModel);

// cls.predictions.transform: dense, GELU, LayerNorm.
struct BertHeadTransformImpl : torch::nn::Module {
  explicit BertHeadTransformImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden);  // (N,C) -> (N,C)

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(BertHeadTransform);

// cls.predictions: the transform, then the decoder, whose weight is the word
// embedding matrix (tied) and whose bias is `bias`.
struct BertLMHeadImpl : torch::nn::Module {
  BertLMHeadImpl(const BertConfig& config, torch::Tensor word_embeddings);
  torch::Tensor forward(const torch::Tensor& hidden);  // (N,C) -> (N,V)

  BertHeadTransform transform{nullptr};
  torch::Tensor decoder_weight;  // (V,C), the word embeddings; not registered again
  torch::Tensor bias;            // (V)
};
TORCH_MODULE(BertLMHead);

struct BertForMaskedLMImpl : torch::nn::Module {
  explicit BertForMaskedLMImpl(const BertConfig& config);

  // The prediction head on the masked positions only:
  // input_ids (B,T), masked_positions (M) flat indices into B*T -> logits (M,V)
  torch::Tensor MaskedLogits(const torch::Tensor& input_ids, const torch::Tensor& masked_positions);
  // The dense head, as Hugging Face computes it: -> logits (B,T,V)
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                        const torch::Tensor& attention_mask = {});

  // Parameters under Hugging Face's names ("bert.embeddings.word_embeddings.weight",
  // "cls.predictions.transform.dense.weight", ...); the tied decoder weight and
  // bias appear once, as the word embeddings and "cls.predictions.bias".
  std::vector<std::pair<std::string, torch::Tensor>> NamedParameters() const;

  BertConfig config;
  BertModel bert{nullptr};
  std::shared_ptr<torch::nn::Module> cls;  // holds "predictions"
  BertLMHead head{nullptr};                // cls.predictions
};
TORCH_MODULE(BertForMaskedLM);

// Hugging Face's _init_weights: Linear and Embedding weights ~ N(0, initializer_range),
// biases 0, LayerNorm 1 and 0, the padding row of the word embeddings 0.
void InitBertWeights(BertForMaskedLM& model);

// Forward FLOPs of one sequence of T tokens with M predicted positions (for MFU):
// matrix products only, 2 FLOPs per multiply-add.
double BertForwardFlops(const BertConfig& config, int64_t T, int64_t M);

}  // namespace bert::engine
