#!/usr/bin/env python3
"""Sums a Chrome trace written by `engine_bench --trace FILE` by operator.

    trace_summary.py FILE [ROWS]

Prints each operator's total time (nested operators are counted in their
parents too) and call count, largest first.
"""
import collections
import json
import sys


def main():
    with open(sys.argv[1]) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    total = collections.defaultdict(float)
    calls = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            total[e["name"]] += e["dur"] / 1e3
            calls[e["name"]] += 1
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    for name, ms in sorted(total.items(), key=lambda kv: -kv[1])[:rows]:
        print(f"{ms:10.1f} ms {calls[name]:6d}  {name}")


if __name__ == "__main__":
    main()
