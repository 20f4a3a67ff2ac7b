#!/usr/bin/env python3
"""The engine's Hugging Face export, loaded by transformers itself.

    hf_transformers_check.py make-tokenizer DIR
        Writes the 64-word tokenizer that engine_device_check's training
        check uses ("[PAD]" "[UNK]" "[CLS]" "[SEP]" "[MASK]" "w5" ... "w63") as
        BertTokenizerFast.save_pretrained writes it (vocab.txt, tokenizer.json).
    hf_transformers_check.py compare EXPORT_DIR LOGITS_JSON [--device cuda]
        Loads EXPORT_DIR with BertForMaskedLM.from_pretrained and
        AutoTokenizer.from_pretrained, checks that the tokenizer encodes
        "w10 w11 w12 [MASK] w13" as [CLS] 10 11 12 [MASK] 13 [SEP], and that the
        model's logits (fp32, eval) on LOGITS_JSON's inputs match the engine's
        within 1e-3 (absolute, logits of order 1-10).

Exit status 0 when all hold, 1 when something differs, 3 when transformers is
not installed (printed as skipped).
"""
import json
import os
import sys

import torch


def make_tokenizer(directory):
    from transformers import BertTokenizerFast
    os.makedirs(directory, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, 64)]
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=os.path.join(directory, "vocab.txt"), do_lower_case=True).save_pretrained(directory)
    return 0


def compare(export_dir, logits_path, device):
    from transformers import AutoTokenizer, BertForMaskedLM
    failures = []
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    encoded = tokenizer("w10 w11 w12 [MASK] w13")["input_ids"]
    if encoded != [2, 10, 11, 12, 4, 13, 3]:
        failures.append(f"AutoTokenizer encodes the test sentence as {encoded}")
    model = BertForMaskedLM.from_pretrained(export_dir).to(device).eval()
    with open(logits_path) as f:
        expected = json.load(f)
    ids = torch.tensor(expected["input_ids"], device=device)
    mask = torch.tensor(expected["attention_mask"], device=device)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float().cpu()
    engine = torch.tensor(expected["logits"])
    keep = mask.cpu().bool()  # padded positions' outputs are not defined the same way
    difference = (logits[keep] - engine[keep]).abs().max().item()
    print(f"transformers vs engine logits on the export: max |difference| {difference:.2e} "
          f"over {int(keep.sum())} positions x {engine.shape[-1]} words")
    if not difference <= 1e-3:
        failures.append(f"logits differ by {difference}")
    if not torch.equal(logits[keep].argmax(-1), engine[keep].argmax(-1)):
        failures.append("the top-1 words differ")
    for failure in failures:
        print("FAIL " + failure)
    return 1 if failures else 0


def main():
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        print(f"skipped: transformers is not installed ({e})")
        return 3
    if len(sys.argv) == 3 and sys.argv[1] == "make-tokenizer":
        return make_tokenizer(sys.argv[2])
    if len(sys.argv) >= 4 and sys.argv[1] == "compare":
        device = sys.argv[5] if len(sys.argv) == 6 and sys.argv[4] == "--device" else "cpu"
        return compare(sys.argv[2], sys.argv[3], device)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
