#include "engine/bert_model.h"

#include <cmath>
#include <limits>

#include "engine/dropout.h"
#include "engine/torch_version.h"

namespace bert::engine {

namespace {

torch::nn::LayerNorm MakeLayerNorm(const BertConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

// LayerNorm in its weights' precision (fp32): CPU autocast in libtorch 1.13
// hands bf16 activations to layer_norm, whose CPU kernel then rejects the fp32
// weights; CUDA autocast does this cast itself.
torch::Tensor Normalize(torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  const auto dtype = norm->weight.scalar_type();
  return norm->forward(x.scalar_type() == dtype ? x : x.to(dtype));
}

// x W^T + b over the last dimension, as one addmm with the bias fused: libtorch
// runs a 3-D input as a matmul and then a separate bias add_, which under bf16
// autocast adds an fp32 bias to a bf16 product on its slow mixed-type path.
torch::Tensor Dense(const torch::Tensor& x, const torch::Tensor& weight,
                    const torch::Tensor& bias) {
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return torch::nn::functional::linear(x.reshape({-1, x.size(-1)}), weight, bias).view(sizes);
}

torch::Tensor Dense(torch::nn::Linear& linear, const torch::Tensor& x) {
  return Dense(x, linear->weight, linear->bias);
}

}  // namespace

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& c) : dropout_p(c.hidden_dropout_prob) {
  word_embeddings = register_module(
      "word_embeddings",
      torch::nn::Embedding(
          torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
  position_embeddings = register_module(
      "position_embeddings", torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
  token_type_embeddings = register_module("token_type_embeddings",
                                          torch::nn::Embedding(c.type_vocab_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", MakeLayerNorm(c));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& input_ids,
                                          const torch::Tensor& token_type_ids) {
  const int64_t T = input_ids.size(1);
  TORCH_CHECK(T <= position_embeddings->weight.size(0), "sequence of ", T,
              " tokens is longer than max_position_embeddings ",
              position_embeddings->weight.size(0));
  // (B,T,C) + (1,T,C) + (B,T,C) or (C): absent token types are all type 0.
  torch::Tensor x =
      word_embeddings(input_ids) + position_embeddings->weight.narrow(0, 0, T).unsqueeze(0);
  x = token_type_ids.defined() ? x + token_type_embeddings(token_type_ids)
                               : x + token_type_embeddings->weight[0];
  return Dropout(Normalize(LayerNorm, x), dropout_p, is_training());
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const BertConfig& c)
    : heads(c.num_attention_heads),
      head_size(c.hidden_size / c.num_attention_heads),
      dropout_p(c.attention_probs_dropout_prob) {
  query = register_module("query", torch::nn::Linear(c.hidden_size, c.hidden_size));
  key = register_module("key", torch::nn::Linear(c.hidden_size, c.hidden_size));
  value = register_module("value", torch::nn::Linear(c.hidden_size, c.hidden_size));
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& x,
                                             const torch::Tensor& mask_bias) {
  const int64_t B = x.size(0), T = x.size(1), H = heads, D = head_size;
  // One product for Q, K and V: (B,T,C) x (3C,C)^T -> (B,T,3C) -> (3,B,H,T,D).
  const torch::Tensor w = torch::cat({query->weight, key->weight, value->weight});
  const torch::Tensor b = torch::cat({query->bias, key->bias, value->bias});
  const torch::Tensor qkv = Dense(x, w, b).view({B, T, 3, H, D}).permute({2, 0, 3, 1, 4});
  const std::vector<torch::Tensor> parts = qkv.unbind(0);  // one backward node, not three selects
  const torch::Tensor &q = parts[0], &k = parts[1], &v = parts[2];  // (B,H,T,D) each
  const double p = is_training() ? dropout_p : 0.0;
#if BERT_TORCH_AT_LEAST(2, 0)
  // Fused scaled-dot-product attention (flash / memory-efficient kernels on CUDA).
  const c10::optional<torch::Tensor> mask =
      mask_bias.defined() ? c10::optional<torch::Tensor>(mask_bias.to(q.scalar_type()))
                          : c10::nullopt;
  torch::Tensor context = at::scaled_dot_product_attention(q, k, v, mask, p, /*is_causal=*/false);
#else
  // softmax(Q K^T / sqrt(D) + mask) V: (B,H,T,D) x (B,H,D,T) -> (B,H,T,T) -> (B,H,T,D)
  torch::Tensor scores =
      torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(D))), k.transpose(-2, -1));
  if (mask_bias.defined()) scores = scores + mask_bias;
  torch::Tensor context = torch::matmul(Dropout(torch::softmax(scores, -1), p, is_training()), v);
#endif
  return context.permute({0, 2, 1, 3}).reshape({B, T, H * D});  // (B,T,C)
}

BertResidualOutputImpl::BertResidualOutputImpl(int64_t in, int64_t out, const BertConfig& c)
    : dropout_p(c.hidden_dropout_prob) {
  dense = register_module("dense", torch::nn::Linear(in, out));
  LayerNorm = register_module("LayerNorm", MakeLayerNorm(c));
}

torch::Tensor BertResidualOutputImpl::forward(const torch::Tensor& x,
                                              const torch::Tensor& residual) {
  torch::Tensor h = Dropout(Dense(dense, x), dropout_p, is_training());  // bf16 under autocast
  // The residual stream stays fp32: convert first, as a bf16 + fp32 add takes
  // libtorch's slow mixed-type path (several times a same-type add).
  if (h.scalar_type() != residual.scalar_type()) h = h.to(residual.scalar_type());
  return Normalize(LayerNorm, h + residual);
}

BertAttentionImpl::BertAttentionImpl(const BertConfig& c) {
  self = register_module("self", BertSelfAttention(c));
  output = register_module("output", BertResidualOutput(c.hidden_size, c.hidden_size, c));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask_bias) {
  return output(self(x, mask_bias), x);
}

BertIntermediateImpl::BertIntermediateImpl(const BertConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.intermediate_size));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& x) {
  return torch::gelu(Dense(dense, x));
}

BertLayerImpl::BertLayerImpl(const BertConfig& c) {
  attention = register_module("attention", BertAttention(c));
  intermediate = register_module("intermediate", BertIntermediate(c));
  output = register_module("output", BertResidualOutput(c.intermediate_size, c.hidden_size, c));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask_bias) {
  const torch::Tensor a = attention(x, mask_bias);  // (B,T,C)
  return output(intermediate(a), a);                // (B,T,I) -> (B,T,C)
}

BertModelImpl::BertModelImpl(const BertConfig& c) {
  embeddings = register_module("embeddings", BertEmbeddings(c));
  encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  layers = encoder->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(BertLayer(c));
}

torch::Tensor BertModelImpl::forward(const torch::Tensor& input_ids,
                                     const torch::Tensor& token_type_ids,
                                     const torch::Tensor& attention_mask) {
  torch::Tensor x = embeddings(input_ids, token_type_ids);  // (B,T,C)
  torch::Tensor mask_bias;  // (B,1,1,T): 0 for tokens, -inf-ish for padding
  if (attention_mask.defined()) {
    mask_bias = (1.0 - attention_mask.to(x.scalar_type()).unsqueeze(1).unsqueeze(2)) *
                std::numeric_limits<float>::lowest();
  }
  for (const auto& layer : *layers) x = layer->as<BertLayer>()->forward(x, mask_bias);
  return x;
}

BertHeadTransformImpl::BertHeadTransformImpl(const BertConfig& c) {
  dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", MakeLayerNorm(c));
}

torch::Tensor BertHeadTransformImpl::forward(const torch::Tensor& hidden) {
  return Normalize(LayerNorm, torch::gelu(Dense(dense, hidden)));
}

BertLMHeadImpl::BertLMHeadImpl(const BertConfig& c, torch::Tensor word_embeddings)
    : decoder_weight(std::move(word_embeddings)) {
  transform = register_module("transform", BertHeadTransform(c));
  bias = register_parameter("bias", torch::zeros({c.vocab_size}));
}

torch::Tensor BertLMHeadImpl::forward(const torch::Tensor& hidden) {
  return Dense(transform(hidden), decoder_weight, bias);  // (N,V)
}

BertForMaskedLMImpl::BertForMaskedLMImpl(const BertConfig& c) : config(c) {
  bert = register_module("bert", BertModel(c));
  cls = register_module("cls", std::make_shared<torch::nn::Module>());
  head =
      cls->register_module("predictions", BertLMHead(c, bert->embeddings->word_embeddings->weight));
}

torch::Tensor BertForMaskedLMImpl::MaskedLogits(const torch::Tensor& input_ids,
                                                const torch::Tensor& masked_positions) {
  const torch::Tensor hidden = bert(input_ids, torch::Tensor(), torch::Tensor());  // (B,T,C)
  const torch::Tensor flat = hidden.reshape({-1, hidden.size(-1)});                // (B*T,C)
  return head(flat.index_select(0, masked_positions));                             // (M,C) -> (M,V)
}

torch::Tensor BertForMaskedLMImpl::forward(const torch::Tensor& input_ids,
                                           const torch::Tensor& token_type_ids,
                                           const torch::Tensor& attention_mask) {
  return head(bert(input_ids, token_type_ids, attention_mask));  // (B,T,C) -> (B,T,V)
}

std::vector<std::pair<std::string, torch::Tensor>> BertForMaskedLMImpl::NamedParameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true))
    out.emplace_back(item.key(), item.value());
  return out;
}

void InitBertWeights(BertForMaskedLM& model) {
  torch::NoGradGuard no_grad;
  const double std = model->config.initializer_range;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor p = item.value();
    const bool is_layer_norm = name.find("LayerNorm") != std::string::npos;
    if (is_layer_norm) {
      p.fill_(name.ends_with(".weight") ? 1.0 : 0.0);
    } else if (name.ends_with(".bias")) {
      p.zero_();
    } else {
      p.normal_(0.0, std);
    }
  }
  model->bert->embeddings->word_embeddings->weight[model->config.pad_token_id].zero_();
}

double BertForwardFlops(const BertConfig& c, int64_t T, int64_t M) {
  const double C = static_cast<double>(c.hidden_size), I = static_cast<double>(c.intermediate_size);
  const double V = static_cast<double>(c.vocab_size), L = static_cast<double>(c.num_hidden_layers);
  // Per token and layer: QKV 6C^2, attention output 2C^2, FFN 4CI, scores and context 4TC.
  const double encoder =
      static_cast<double>(T) * L * (8 * C * C + 4 * C * I + 4 * static_cast<double>(T) * C);
  // Per predicted position: transform 2C^2, decoder 2CV.
  const double head = static_cast<double>(M) * (2 * C * C + 2 * C * V);
  return encoder + head;
}

}  // namespace bert::engine
