#!/usr/bin/env python3
"""Sums a Chrome trace written by `engine_bench --trace FILE` by operator.

    trace_summary.py FILE [ROWS]

Prints the step's span, then each operator's self time (its own, without the
operators it called), total time (with them) and call count, largest self
time first. Time in none of the listed operators (a custom autograd
function's forward, the optimizer) is the span less the self times.
"""
import collections
import json
import sys


def main():
    with open(sys.argv[1]) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    events = [e for e in events if e.get("ph") == "X" and "dur" in e]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    own = collections.defaultdict(float)
    total = collections.defaultdict(float)
    calls = collections.Counter()
    span = 0.0
    for thread_events in by_thread.values():
        thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
        start = thread_events[0]["ts"]
        end = max(e["ts"] + e["dur"] for e in thread_events)
        span = max(span, (end - start) / 1e3)
        stack = []  # enclosing events, innermost last
        for e in thread_events:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                own[stack[-1]["name"]] -= e["dur"] / 1e3
            own[e["name"]] += e["dur"] / 1e3
            total[e["name"]] += e["dur"] / 1e3
            calls[e["name"]] += 1
            stack.append(e)
    print(f"step span {span:.1f} ms; in no operator {span - sum(own.values()):.1f} ms")
    print(f"{'self ms':>10} {'total ms':>10} {'calls':>6}  operator")
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    for name, ms in sorted(own.items(), key=lambda kv: -kv[1])[:rows]:
        print(f"{ms:10.1f} {total[name]:10.1f} {calls[name]:6d}  {name}")


if __name__ == "__main__":
    main()
