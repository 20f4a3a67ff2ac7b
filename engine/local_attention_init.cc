#include "engine/local_attention_init.h"

#include <cmath>
#include <vector>

#include "protocol/worker_config.h"

namespace bert::engine {
namespace {

// Measured on the quickstart (Brown, bert-tiny, 800 steps; README.md): a
// position's share of the embedding variance equal to a word's, and a query and
// key scale of 1.5, which starts a head of 64 dimensions with 30-45% of its
// attention on its neighbour (one of 32, 15%): enough to be used at once, not
// so peaked that its softmax stops learning (3 did worse).
constexpr double kPositionScale = 1.0;
constexpr double kQueryKeyScale = 1.5;
constexpr double kValueOutputScale = 1.0;

// Frequency of dimension pair k (of C / 2): the band (0, pi] in C / 2 steps,
// dealt round the heads so each head's D / 2 pairs span all of it.
std::vector<double> PairFrequencies(int64_t pairs, int64_t heads) {
  const int64_t per_head = pairs / heads;
  std::vector<double> omega(pairs);
  for (int64_t k = 0; k < pairs; ++k) {
    const int64_t rank = (k % per_head) * heads + k / per_head;  // 0 .. pairs-1
    omega[k] = M_PI * static_cast<double>(rank + 1) / static_cast<double>(pairs);
  }
  return omega;
}

}  // namespace

int64_t LocalAttentionOffset(int64_t head) {
  return (head % 2 == 0 ? -1 : 1) * (1 + head / 2);
}

std::string DescribeLocalAttentionInit(const BertConfig& config) {
  std::string offsets;
  for (int64_t h = 0; h < config.num_attention_heads; ++h) {
    const int64_t s = LocalAttentionOffset(h);
    offsets += (h == 0 ? "" : ", ") + std::string(s > 0 ? "+" : "") + std::to_string(s);
  }
  return "initialization local-attention: layer 0's heads start on the tokens at offsets " + offsets +
         "; position embeddings sinusoidal";
}

void InitLocalAttention(BertForMaskedLM& model) {
  const BertConfig& c = model->config;
  const std::string error = protocol::ModelInitializationSizeError(protocol::kModelInitLocalAttention,
                                                                    c.hidden_size, c.num_attention_heads);
  TORCH_CHECK(error.empty(), error);
  torch::NoGradGuard no_grad;
  const int64_t C = c.hidden_size, H = c.num_attention_heads, pairs = C / 2, per_head = pairs / H;
  const std::vector<double> omega = PairFrequencies(pairs, H);

  // Each sin/cos pair has variance amp^2 / 2: amp = std * sqrt(2) matches a
  // word embedding's N(0, std^2) per dimension.
  const double amp = kPositionScale * c.initializer_range * std::sqrt(2.0);
  const int64_t P = c.max_position_embeddings;
  torch::Tensor positions = torch::empty({P, C});
  auto pa = positions.accessor<float, 2>();
  for (int64_t t = 0; t < P; ++t) {
    for (int64_t k = 0; k < pairs; ++k) {
      pa[t][2 * k] = static_cast<float>(amp * std::sin(static_cast<double>(t) * omega[k]));
      pa[t][2 * k + 1] = static_cast<float>(amp * std::cos(static_cast<double>(t) * omega[k]));
    }
  }
  model->bert->embeddings->position_embeddings->weight.copy_(positions);

  // q = R x rotates pair k by s_h w_k: (sin a, cos a) -> (sin(a + s w), cos(a + s w)),
  // so q_i . k_j = sum_k cos((i + s - j) w_k) (times the scales), largest at j = i + s.
  torch::Tensor rotation = torch::zeros({C, C});
  auto ra = rotation.accessor<float, 2>();
  for (int64_t k = 0; k < pairs; ++k) {
    const double angle = static_cast<double>(LocalAttentionOffset(k / per_head)) * omega[k];
    const float cs = static_cast<float>(std::cos(angle)), sn = static_cast<float>(std::sin(angle));
    ra[2 * k][2 * k] = cs;
    ra[2 * k][2 * k + 1] = sn;
    ra[2 * k + 1][2 * k] = -sn;
    ra[2 * k + 1][2 * k + 1] = cs;
  }
  const torch::Tensor identity = torch::eye(C);
  BertLayerImpl& layer = *(*model->bert->layers)[0]->as<BertLayer>();
  BertSelfAttentionImpl& self = *layer.attention->self;
  self.query->weight.add_(rotation * kQueryKeyScale);
  self.key->weight.add_(identity * kQueryKeyScale);
  self.value->weight.add_(identity * kValueOutputScale);
  layer.attention->output->dense->weight.add_(identity * kValueOutputScale);
}

}  // namespace bert::engine
