#!/usr/bin/env python3
"""Checks that an exported model directory is what Hugging Face loads.

    hf_check.py MODEL_DIR BERT_WORKER [TEXT]

1. model.safetensors, parsed by hand (no safetensors library), holds exactly the
   tensors of transformers' BertForMaskedLM state dict (minus the tied decoder
   weight and bias, as save_pretrained writes it), with their shapes, as F32.
2. config.json, tokenizer_config.json and special_tokens_map.json carry what
   from_pretrained / AutoTokenizer read.
3. The Hugging Face architecture (hf_bert.py) with these weights gives the same
   top-k fills and probabilities as `bert-worker predict`.
Exit status 0 when all hold; prints what differs otherwise.
"""
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_bert  # noqa: E402


def main():
    model_dir, worker = sys.argv[1], sys.argv[2]
    text = sys.argv[3] if len(sys.argv) > 3 else "the [MASK] said that the [MASK] was"
    failures = []
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    for key in ("architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "vocab_size", "max_position_embeddings", "type_vocab_size", "hidden_act",
                "layer_norm_eps", "pad_token_id"):
        if key not in config:
            failures.append(f"config.json lacks {key}")
    if config.get("architectures") != ["BertForMaskedLM"] or config.get("model_type") != "bert":
        failures.append("config.json: not a BertForMaskedLM / bert config")
    with open(os.path.join(model_dir, "tokenizer_config.json")) as f:
        tok_config = json.load(f)
    with open(os.path.join(model_dir, "special_tokens_map.json")) as f:
        special = json.load(f)
    for key in ("cls_token", "sep_token", "mask_token", "pad_token", "unk_token"):
        if key not in tok_config or key not in special:
            failures.append(f"tokenizer files lack {key}")
    with open(os.path.join(model_dir, "tokenizer.json")) as f:
        json.load(f)

    c = hf_bert.Config(**{k: v for k, v in config.items() if k in hf_bert.Config().__dict__})
    model = hf_bert.BertForMaskedLM(c).eval()
    expected = hf_bert.hf_state_dict_names(model)
    tensors = hf_bert.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    if set(tensors) != set(expected):
        failures.append(f"names differ: missing {sorted(set(expected) - set(tensors))}, "
                        f"unexpected {sorted(set(tensors) - set(expected))}")
    for name, (dtype, t) in tensors.items():
        if name in expected and tuple(t.shape) != expected[name]:
            failures.append(f"{name}: shape {tuple(t.shape)}, expected {expected[name]}")
        if dtype != "F32":
            failures.append(f"{name}: dtype {dtype}, expected F32")
    missing, unexpected = model.load_state_dict({k: t for k, (_, t) in tensors.items()}, strict=False)
    if set(missing) - hf_bert.TIED_KEYS or unexpected:
        failures.append(f"load_state_dict: missing {missing}, unexpected {unexpected}")

    out = subprocess.run([worker, "predict", "--model", model_dir, "--top-k", "5", "--json", text],
                         check=True, capture_output=True, text=True).stdout
    prediction = json.loads(out)
    ids = torch.tensor([prediction["input_ids"]])
    with torch.no_grad():
        probs = torch.softmax(model(ids)[0], dim=-1)  # (T,V), the dense head as HF computes it
    worst = 0.0
    for fill in prediction["fills"]:
        ref_scores, ref_ids = probs[fill["position"]].topk(len(fill["top"]))
        for got, ref_id, ref_score in zip(fill["top"], ref_ids.tolist(), ref_scores.tolist()):
            worst = max(worst, abs(got["score"] - ref_score))
            if got["id"] != ref_id and abs(got["score"] - ref_score) > 1e-5:
                failures.append(f"position {fill['position']}: bert-worker says {got}, HF architecture "
                                f"says id {ref_id} p={ref_score:.6f}")
    print(f"tensors {len(tensors)}, fills {len(prediction['fills'])}, max |p diff| {worst:.2e}")
    if worst > 1e-4:
        failures.append(f"probabilities differ by {worst}")
    for f in failures:
        print("FAIL:", f)
    print("OK: loadable as Hugging Face BertForMaskedLM, same predictions" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
