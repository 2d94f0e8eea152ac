#!/usr/bin/env python3
"""Summarise ONNX Runtime profiles written by rewardkit's training engine.

    mkdir -p /tmp/prof
    REWARDKIT_ORT_PROFILE=/tmp/prof target/release/examples/train_timing 128 6 2
    python3 benches/profile/ort_summary.py /tmp/prof [--top 25] [--skip 2]

REWARDKIT_ORT_PROFILE makes every training-engine session write ORT's JSON
profile into that folder (train_*.json, optimizer_*.json, eval_*.json). For
each session this prints the mean per run (after skipping the first --skip
runs, which include warm-up): the run's wall time, the kernels' time split
into GEMMs (MatMul, FusedMatMul, Gemm) and the rest, and the --top costliest
(op, output shape) classes with their node counts per run. Standard library
only.
"""
import argparse
import collections
import glob
import json
import os

GEMMS = ("MatMul", "FusedMatMul", "Gemm")


def summarise(path, skip, top):
    events = json.load(open(path))
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    if len(runs) <= skip:
        print(f"{os.path.basename(path)}: {len(runs)} run(s), nothing after skipping {skip}")
        return
    start = runs[skip]["ts"]
    n = len(runs) - skip
    nodes = [e for e in events
             if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start]
    total = sum(e["dur"] for e in nodes) / n / 1000
    gemm = sum(e["dur"] for e in nodes if e["args"].get("op_name") in GEMMS) / n / 1000
    wall = sum(r["dur"] for r in runs[skip:]) / n / 1000
    print(f"{os.path.basename(path)}: {n} runs; per run {wall:.1f} ms wall, kernels {total:.1f} ms "
          f"(GEMMs {gemm:.1f}, rest {total - gemm:.1f})")
    time = collections.Counter()
    count = collections.Counter()
    for e in nodes:
        key = (e["args"].get("op_name"), json.dumps(e["args"].get("output_type_shape"))[:80])
        time[key] += e["dur"]
        count[key] += 1
    for (op, shape), t in time.most_common(top):
        print(f"  {t / n / 1000:8.2f} ms  x{count[(op, shape)] // n:<4d} {op:<24s} {shape}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--skip", type=int, default=2, help="leading runs to leave out (warm-up)")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.folder, "*.json")))
    if not files:
        raise SystemExit(f"no profiles in {args.folder}")
    for f in files:
        summarise(f, args.skip, args.top)


if __name__ == "__main__":
    main()
