#!/usr/bin/env python3
"""Training-step throughput of the Hugging Face BERT architecture in PyTorch
eager mode (hf_bert.py: dense prediction head, as transformers computes it),
with torch.optim.AdamW and gradient clipping, for engine_bench to compare
against.

    hf_eager_bench.py PRESET SEQ_LEN BATCH THREADS PRECISION VOCAB

Builds the model, takes one warm-up step and prints {"ready": true}; then for
each line "STEPS" read from stdin, times STEPS training steps and prints one
JSON line {"sequences_per_second": ..., "seconds": ...}. Exits at end of input.
Driven as a co-process, so that engine_bench can interleave its own timings
with these ones on a shared machine.
"""
import json
import sys
import time

import torch

import hf_bert


def main():
    preset, T, B, threads, precision, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = hf_bert.BertForMaskedLM(hf_bert.preset(preset, vocab_size=vocab)).train()
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not ("bias" in n or "LayerNorm" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=5e-5, betas=(0.9, 0.999), eps=1e-8)
    ids = torch.randint(5, vocab, (B, T))
    labels = torch.full((B, T), -100)
    chosen = torch.rand(B, T) < 0.15
    labels[chosen] = ids[chosen]

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = model(ids, labels=labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm up
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        steps = int(line)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = time.perf_counter() - start
        print(json.dumps({"sequences_per_second": B * steps / seconds, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
