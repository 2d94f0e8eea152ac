#!/usr/bin/env python3
"""Latency of single-pair Scorer.score calls from Python.

    python bench.py BUNDLE_DIR N

Same method as bindings/bench/bench_c.c (the C baseline): default options,
20 untimed calls, then N calls timed one by one; prints
    median_us=M p99_us=P
with nearest-rank percentiles. Needs librewardkit (REWARDKIT_LIB, see the README).
"""

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this checkout's package

import rewardkit

WARMUP = 20
PROMPT = "What is the capital of France?"
RESPONSE = "The capital of France is Paris."


def percentile(sorted_us, q):
    return sorted_us[max(1, math.ceil(q * len(sorted_us))) - 1]


def main():
    if len(sys.argv) != 3 or not sys.argv[2].isdigit() or int(sys.argv[2]) <= 0:
        sys.exit("usage: bench.py BUNDLE_DIR N")
    n = int(sys.argv[2])
    clock = time.perf_counter_ns
    with rewardkit.Scorer(sys.argv[1]) as scorer:
        score = scorer.score
        for _ in range(WARMUP):
            score(PROMPT, RESPONSE)
        us = []
        for _ in range(n):
            t0 = clock()
            score(PROMPT, RESPONSE)
            us.append((clock() - t0) / 1e3)
    us.sort()
    print(f"median_us={percentile(us, 0.5):.1f} p99_us={percentile(us, 0.99):.1f}")


if __name__ == "__main__":
    main()
