"""BertForMaskedLM with Hugging Face Transformers' architecture and names, in
plain PyTorch (transformers itself is not installable here).

It mirrors transformers.models.bert.modeling_bert in eager mode: separate
query/key/value projections, attention probabilities materialised, post-LN,
exact GELU, the prediction head over every token (dense), the decoder tied to
the word embeddings. Used by the benchmarks as the reference implementation and
by hf_check.py to load an exported model.safetensors.
"""
import json
import math
import struct

import torch
from torch import nn


class Config:
    def __init__(self, **kw):
        self.vocab_size = kw.get("vocab_size", 30522)
        self.hidden_size = kw.get("hidden_size", 768)
        self.num_hidden_layers = kw.get("num_hidden_layers", 12)
        self.num_attention_heads = kw.get("num_attention_heads", 12)
        self.intermediate_size = kw.get("intermediate_size", 4 * self.hidden_size)
        self.max_position_embeddings = kw.get("max_position_embeddings", 512)
        self.type_vocab_size = kw.get("type_vocab_size", 2)
        self.hidden_dropout_prob = kw.get("hidden_dropout_prob", 0.1)
        self.attention_probs_dropout_prob = kw.get("attention_probs_dropout_prob", 0.1)
        self.layer_norm_eps = kw.get("layer_norm_eps", 1e-12)
        self.pad_token_id = kw.get("pad_token_id", 0)


PRESETS = {
    "bert-tiny": (2, 128, 2), "bert-mini": (4, 256, 4), "bert-small": (4, 512, 8),
    "bert-medium": (8, 512, 8), "bert-base-uncased": (12, 768, 12), "bert-large-uncased": (24, 1024, 16),
}


def preset(name, vocab_size=30522, **kw):
    layers, hidden, heads = PRESETS[name]
    return Config(vocab_size=vocab_size, num_hidden_layers=layers, hidden_size=hidden,
                  num_attention_heads=heads, **kw)


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids):
        T = input_ids.shape[1]
        pos = torch.arange(T, device=input_ids.device).unsqueeze(0)
        tt = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(tt)
        x = x + self.position_embeddings(pos)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h = c.num_attention_heads
        self.d = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def split(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.h, self.d).permute(0, 2, 1, 3)

    def forward(self, x, mask_bias):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d)
        if mask_bias is not None:
            scores = scores + mask_bias
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class BertOutput(nn.Module):  # BertSelfOutput and BertOutput
    def __init__(self, c, inp):
        super().__init__()
        self.dense = nn.Linear(inp, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertOutput(c, c.hidden_size)

    def forward(self, x, mask_bias):
        return self.output(self.self(x, mask_bias), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c, c.intermediate_size)

    def forward(self, x, mask_bias):
        a = self.attention(x, mask_bias)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x, mask_bias):
        for layer in self.layer:
            x = layer(x, mask_bias)
        return x


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)

    def forward(self, input_ids, attention_mask=None):
        x = self.embeddings(input_ids)
        mask_bias = None
        if attention_mask is not None:
            mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        return self.encoder(x, mask_bias)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        # LayerNorm in fp32 under CPU bf16 autocast: libtorch 1.13's CPU
        # layer_norm rejects bf16 input with fp32 weights (torch 2.x autocast
        # runs layer_norm in fp32 itself). A no-op in fp32.
        x = nn.functional.gelu(self.dense(x))
        return self.LayerNorm(x.to(self.LayerNorm.weight.dtype))


class BertLMPredictionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = BertPredictionHeadTransform(c)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, x):
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = BertLMPredictionHead(c)

    def forward(self, x):
        return self.predictions(x)


class BertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.bert = BertModel(c)
        self.cls = BertOnlyMLMHead(c)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
        self.apply(self._init)

    def _init(self, m):
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0.0, 0.02)
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.data.normal_(0.0, 0.02)
            if m.padding_idx is not None:
                m.weight.data[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            m.bias.data.zero_()
            m.weight.data.fill_(1.0)

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.cls(self.bert(input_ids, attention_mask))  # (B,T,V): every token, as HF does
        if labels is None:
            return logits
        loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
        return loss, logits


# Hugging Face's save_pretrained leaves the tied decoder weight and bias out.
TIED_KEYS = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}


def hf_state_dict_names(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in TIED_KEYS}


DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
          "I64": (torch.int64, 8), "I32": (torch.int32, 4)}


def read_safetensors(path):
    """Parses a safetensors file by hand: u64 header length, JSON header, raw bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        dtype, size = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = math.prod(info["shape"]) if info["shape"] else 1
        assert end - begin == count * size, f"{name}: byte range does not match its shape"
        buf = bytearray(data[8 + n + begin:8 + n + end])
        out[name] = (info["dtype"], torch.frombuffer(buf, dtype=dtype).reshape(info["shape"]))
    return out
