#!/usr/bin/env python3
"""Profile PyTorch's side of train_speed.py (the same hand loop) with torch.profiler.

    /tmp/cmpenv/bin/python benches/profile/torch_train_profile.py [--max-length 128] [--steps 3]

Runs 3 warm-up steps, then profiles --steps steps and prints torch.profiler's
table and one line per step: total op time, GEMMs (mm, addmm, bmm), the
AdamW step, and the rest, to compare with benches/profile/ort_summary.py's
split of rewardkit's training graph. The profiler adds some overhead of its own.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compare"))
import train_speed  # noqa: E402  (the model, data and loop definitions)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from torch.profiler import ProfilerActivity, profile

    step = train_speed.torch_training(args.max_length, args.threads)
    for s in range(3):
        step(s)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for s in range(3, 3 + args.steps):
            step(s)
        wall = (time.perf_counter() - t0) / args.steps
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    averages = {e.key: e for e in prof.key_averages()}
    per = 1000.0 / args.steps
    gemm = sum(averages[k].self_cpu_time_total for k in ("aten::mm", "aten::addmm", "aten::bmm") if k in averages)
    optim = sum(e.cpu_time_total for k, e in averages.items() if k.startswith("Optimizer.step"))
    total = sum(e.self_cpu_time_total for e in averages.values())
    print(f"per step: wall {wall * 1000:.0f} ms; ops {total / per:.0f} ms = GEMMs {gemm / per:.0f}, "
          f"AdamW step {optim / per:.0f}, rest {(total - gemm - optim) / per:.0f}")


if __name__ == "__main__":
    main()
