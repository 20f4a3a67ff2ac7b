"""Drives bertd_engine.pretrain as bert-worker-py does, with step hooks of its own.

    python3 python_front_hooks.py BIN_DIR CONFIG.json SUMMARY.json count|raise

Reports go to stdout, as the worker's. SUMMARY.json gets the exit status, the
settings `prepare` was given, and the order in which the engine called the
hooks ("B" after a backward, "O" after an optimizer step). With `raise`, the
first after_optimizer_step raises. Used by tests/engine/python_front_test.cc.
"""
import json
import sys

bin_dir, config, summary, mode = sys.argv[1:5]
sys.path.insert(0, bin_dir)
import torch  # noqa: F401,E402
import bertd_engine  # noqa: E402

calls = []
seen = {}


def after_optimizer_step():
    calls.append("O")
    if mode == "raise":
        raise RuntimeError("a hook that fails")


def prepare(settings):
    seen.update(settings)
    return {"after_backward": lambda: calls.append("B"), "after_optimizer_step": after_optimizer_step}


status = bertd_engine.pretrain(config, prepare=prepare)
with open(summary, "w") as out:
    json.dump({"status": status, "calls": "".join(calls), "settings": seen}, out)
