#!/usr/bin/env python3
"""Dynamic int8 against float: the same bundle before and after
`rewardkit quantize`, scored side by side in one process.

For each (float, int8) bundle pair it reports pairwise accuracy (strict
r_chosen > r_rejected) on a preference file, how often the two bundles
prefer the same response, and scoring throughput: alternating timed passes
over the same (prompt, response) pairs, strings to scores, through the
Python binding (bindings/python, ctypes over the C ABI), with the same
threads and batch size on both sides. Medians of --reps passes.

    cargo build --release
    target/release/rewardkit quantize --model FLOAT --out INT8
    python3 benches/compare/int8_compare.py --float FLOAT --int8 INT8 \
        --data ../shared/data/dev.jsonl [--pairs 256] [--batch 32] [--threads 2]

Needs only the Python standard library (and numpy, which the binding
imports lazily for as_numpy only).
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                r = json.loads(line)
                if not all(k in r for k in ("prompt", "chosen", "rejected")):
                    sys.exit(f"{path}:{n}: expected prompt, chosen and rejected")
                rows.append(r)
    return rows


def accuracy(scorer, rows, batch):
    prompts = [r["prompt"] for r in rows]
    chosen = scorer.score_batch(prompts, [r["chosen"] for r in rows])
    rejected = scorer.score_batch(prompts, [r["rejected"] for r in rows])
    prefs = [c > r for c, r in zip(chosen, rejected)]
    return sum(prefs) / len(prefs), prefs


def timed_pass(scorer, prompts, responses):
    t = time.perf_counter()
    scorer.score_batch(prompts, responses)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--float", dest="float_dir", required=True, action="append")
    ap.add_argument("--int8", dest="int8_dir", required=True, action="append")
    ap.add_argument("--data", required=True, action="append",
                    help="preference JSONL per bundle pair (prompt, chosen, rejected)")
    ap.add_argument("--pairs", type=int, default=256, help="(prompt, response) pairs per timed pass")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lib", default=os.path.join(ROOT, "target", "release", "librewardkit.so"))
    args = ap.parse_args()
    if not (len(args.float_dir) == len(args.int8_dir) == len(args.data)):
        sys.exit("give one --float, --int8 and --data per bundle pair")

    os.environ.setdefault("REWARDKIT_LIB", args.lib)
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import rewardkit  # noqa: E402

    load = os.getloadavg()[0]
    out = []
    for fdir, qdir, data in zip(args.float_dir, args.int8_dir, args.data):
        rows = load_rows(data)
        opts = dict(threads=args.threads, max_batch=args.batch)
        sides = {"float": rewardkit.Scorer(fdir, **opts), "int8": rewardkit.Scorer(qdir, **opts)}
        acc = {}
        prefs = {}
        for name, s in sides.items():
            acc[name], prefs[name] = accuracy(s, rows, args.batch)
        agree = sum(a == b for a, b in zip(prefs["float"], prefs["int8"])) / len(rows)
        pairs = []
        for r in rows:
            pairs += [(r["prompt"], r["chosen"]), (r["prompt"], r["rejected"])]
        pairs = (pairs * (args.pairs // max(len(pairs), 1) + 1))[: args.pairs]
        prompts = [p for p, _ in pairs]
        responses = [r for _, r in pairs]
        times = {name: [] for name in sides}
        for name, s in sides.items():  # warm-up
            timed_pass(s, prompts[: args.batch], responses[: args.batch])
        for _ in range(args.reps):
            for name, s in sides.items():  # alternate
                times[name].append(timed_pass(s, prompts, responses))
        rate = {name: len(pairs) / statistics.median(t) for name, t in times.items()}
        out.append((fdir, data, len(rows), acc, agree, rate))
        for s in sides.values():
            s.close()

    print(f"\n{os.cpu_count()} cores, load average {load:.1f} before / {os.getloadavg()[0]:.1f} after; "
          f"{args.threads} threads, batch {args.batch}, {args.pairs} pairs per pass, median of {args.reps}\n")
    print("| bundle | data | rows | float acc | int8 acc | same preference | float pairs/s | int8 pairs/s | int8/float |")
    print("|---|---|---|---|---|---|---|---|---|")
    for fdir, data, n, acc, agree, rate in out:
        print(f"| {os.path.basename(os.path.normpath(fdir))} | {os.path.basename(data)} | {n} "
              f"| {acc['float']:.1%} | {acc['int8']:.1%} | {agree:.1%} "
              f"| {rate['float']:.1f} | {rate['int8']:.1f} | {rate['int8'] / rate['float']:.2f}× |")


if __name__ == "__main__":
    main()
