#!/usr/bin/env python3
"""Training-step throughput of Hugging Face transformers' BertForMaskedLM on
one device, for scripts/gpu-check.sh to set beside engine_device_bench.

    hf_transformers_bench.py --device cuda --seq 128 --batch 256 \
        --precision bf16 --attn eager|sdpa [--steps 20] [--warmup 3]

bert-base-uncased's configuration (BertConfig's defaults: nothing is
downloaded), randomly initialised; a step as the Trainer takes it: bf16
autocast, the MLM loss over 15% masked positions (labels -100 elsewhere, the
dense prediction head over every position, as transformers computes it),
backward, clip_grad_norm_(1.0), torch.optim.AdamW. Prints one JSON line
{"attn": ..., "sequences_per_second": ...}, or {"skipped": WHY} and exit
status 3 when transformers (or its SDPA attention) is not available.
"""
import argparse
import json
import sys
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seq", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--attn", default="eager", choices=["eager", "sdpa"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    try:
        import transformers
        from transformers import BertConfig, BertForMaskedLM
    except ImportError as e:
        print(json.dumps({"skipped": f"transformers is not installed ({e})"}))
        return 3
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = BertConfig()  # bert-base-uncased: 30522 words, 768 hidden, 12 layers, 12 heads
    try:
        model = BertForMaskedLM._from_config(config, attn_implementation=args.attn)
    except (TypeError, ValueError, ImportError) as e:
        print(json.dumps({"skipped": f"transformers {transformers.__version__} has no {args.attn} attention "
                                     f"for BERT ({e})"}))
        return 3
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    ids = torch.randint(5, config.vocab_size, (args.batch, args.seq), device=device)
    labels = torch.where(torch.rand(ids.shape, device=device) < 0.15, ids, torch.full_like(ids, -100))
    bf16 = args.precision == "bf16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    print(json.dumps({"attn": getattr(model.config, "_attn_implementation", args.attn),
                      "transformers": transformers.__version__, "seq": args.seq, "batch": args.batch,
                      "sequences_per_second": args.batch * args.steps / seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
