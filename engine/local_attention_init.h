// The "local-attention" initialisation (model.initialization in the job spec):
// Hugging Face's initialisation, then a start in which the first layer's
// attention heads already look at the neighbouring tokens.
//
// A BERT initialised as Hugging Face does (N(0, 0.02) everywhere) attends
// uniformly over the sequence at first: before it can use its context it must
// learn which positions are near which from random position embeddings, and a
// small model trained for minutes on a small corpus sits meanwhile on the
// unigram plateau (it predicts "the", "," and "." everywhere). The cure in the
// field is a positional prior (ALiBi in MosaicBERT, rotary or sinusoidal
// positions elsewhere, and mimetic initialisation, Trockman & Kolter 2023, which
// starts attention near an identity); none of those architectures loads into a
// Hugging Face BertForMaskedLM. This keeps the architecture and gives the prior
// through the initial weights alone:
//  - position embeddings: sinusoids, pair k of dimensions holding
//    sin(t w_k), cos(t w_k) with the frequencies w_k spread over (0, pi] and
//    dealt round the heads so each head sees the whole band; scaled so that a
//    position carries as much variance as a word embedding (times kPositionScale);
//  - layer 0, head h: its query weight rotates each pair by s_h w_k, and its
//    key weight is the identity, so that q_i . k_j peaks at j = i + s_h, with
//    s = -1, +1, -2, +2, ... for heads 0, 1, 2, 3, ...: the left neighbour, the
//    right one, then two away, and so on;
//  - layer 0's value and attention-output weights start near the identity, so
//    what a head reads from its neighbour reaches the residual stream at once.
// The N(0, 0.02) noise stays on every weight; biases stay 0; later layers are
// Hugging Face's. The model learns everything from there as usual: this is a
// starting point, not a constraint, and the exported model is an ordinary BERT.
#pragma once

#include <string>

#include "engine/bert_model.h"

namespace bert::engine {

// Applies the above to a model that InitBertWeights initialised. Its head size
// must be even (protocol::ModelInitializationSizeError says why not).
void InitLocalAttention(BertForMaskedLM& model);

// The offset head h of layer 0 starts attending to: -1, +1, -2, +2, ...
int64_t LocalAttentionOffset(int64_t head);

// One line for the job's log: "initialization local-attention: layer 0's
// heads start on the tokens at offsets -1, +1; position embeddings sinusoidal".
std::string DescribeLocalAttentionInit(const BertConfig& config);

}  // namespace bert::engine
