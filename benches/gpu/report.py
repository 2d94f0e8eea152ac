#!/usr/bin/env python3
"""Markdown tables from the GPU benchmark's JSON lines: PyTorch next to rewardkit.

Input: JSON lines from benches/gpu/torch_gpu.py ("impl": "pytorch") and from
rewardkit's GPU benchmark ("impl": "rewardkit"), in the files given as
arguments or on stdin; other lines (logs) are skipped. A timing line is

  {"impl": ..., "case": ..., "precision": ..., "device": ..., "seconds": [...],
   "pairs_per_iter": N, "peak_mem_mib": x or null}

or has "error" in place of "seconds". Where a (case, precision, impl) occurs
twice, the later line wins. Loss lines are rewardkit's
{"impl": "rewardkit", "case": "losses-cpu-vs-cuda", "cpu": [...], "cuda": [...],
"max_rel_diff": x} and torch_gpu.py's {"impl": "pytorch", "case": "losses",
"losses": [...]}.

Output: one row per (case, precision), in order of first appearance: median
milliseconds per iteration, pairs/s (pairs_per_iter / median), rewardkit's
pairs/s over PyTorch's (above 1: rewardkit is faster) and peak GPU memory;
"–" where a side has no line. Then the losses table: per step rewardkit's CPU
and CUDA losses and |cuda - cpu| / |cpu|, and PyTorch's losses where given
(its own head initialisation: compare their trend, not their values).

Usage:
    python3 benches/gpu/report.py pytorch.jsonl rewardkit.jsonl
    cat *.jsonl | python3 benches/gpu/report.py
"""
import fileinput
import json
import statistics
import sys

MISSING = "–"
LABELS = {"pytorch": "PyTorch", "rewardkit": "rewardkit"}


def read_records(paths):
    records = []
    for line in fileinput.input(paths or ["-"], encoding="utf-8"):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("impl") in LABELS and "case" in rec:
            records.append(rec)
    return records


def median_s(rec):
    return statistics.median(rec["seconds"]) if rec and rec.get("seconds") else None


def pairs_per_s(rec):
    m = median_s(rec)
    return rec["pairs_per_iter"] / m if m else None


def fmt(v, spec):
    return MISSING if v is None else format(v, spec)


def cell(rec, value, spec):
    """A side's value, "error" where its line reports one, "–" where it has none."""
    if rec and "error" in rec:
        return "error"
    return fmt(value, spec)


def mem(rec):
    return fmt(rec.get("peak_mem_mib") if rec else None, ".0f")


def timing_table(timings):
    lines = ["| case | precision | PyTorch median ms | rewardkit median ms | PyTorch pairs/s | rewardkit pairs/s "
             "| rk/PT speed | peak GPU MiB PT · rk |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (case, precision), sides in timings.items():
        pt, rk = sides.get("pytorch"), sides.get("rewardkit")
        pt_rate, rk_rate = pairs_per_s(pt), pairs_per_s(rk)
        ms = [median_s(r) * 1e3 if median_s(r) else None for r in (pt, rk)]
        ratio = f"{rk_rate / pt_rate:.2f}×" if pt_rate and rk_rate else MISSING
        lines.append(f"| {case} | {precision} | {cell(pt, ms[0], '.2f')} | {cell(rk, ms[1], '.2f')} "
                     f"| {cell(pt, pt_rate, '.1f')} | {cell(rk, rk_rate, '.1f')} | {ratio} | {mem(pt)} · {mem(rk)} |")
    return lines


def losses_table(rk, pt):
    """rk: rewardkit's losses-cpu-vs-cuda line or None; pt: PyTorch's losses line or None."""
    cpu, cuda = (rk or {}).get("cpu") or [], (rk or {}).get("cuda") or []
    torch_losses = (pt or {}).get("losses") or []
    head = ["step", "rewardkit cpu", "rewardkit cuda", "rel diff"]
    if torch_losses:
        head.append(f"PyTorch ({pt.get('device', '?')})")
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for i in range(max(len(cpu), len(cuda), len(torch_losses))):
        a = cpu[i] if i < len(cpu) else None
        b = cuda[i] if i < len(cuda) else None
        rel = abs(b - a) / max(abs(a), 1e-12) if a is not None and b is not None else None
        row = [str(i + 1), fmt(a, ".6f"), fmt(b, ".6f"), fmt(rel, ".2e")]
        if torch_losses:
            row.append(fmt(torch_losses[i] if i < len(torch_losses) else None, ".6f"))
        lines.append("| " + " | ".join(row) + " |")
    if rk and rk.get("max_rel_diff") is not None:
        lines.append(f"\nrewardkit's max relative difference, CUDA against CPU: {rk['max_rel_diff']:.2e}")
    if torch_losses:
        lines.append("\nPyTorch's head is initialised its own way (torch seed 0): compare its trend, not its values.")
    return lines


def main():
    records = read_records(sys.argv[1:])
    if not records:
        sys.exit("no benchmark lines (JSON objects with impl pytorch or rewardkit and a case) in the input")
    timings, devices, errors = {}, {}, []
    losses = {}
    for rec in records:
        impl, case = rec["impl"], rec["case"]
        if case in ("losses", "losses-cpu-vs-cuda"):
            losses[impl] = rec
            continue
        if "seconds" not in rec and "error" not in rec:
            print(f"skipped a line without seconds or error: {json.dumps(rec)[:200]}", file=sys.stderr)
            continue
        timings.setdefault((case, rec.get("precision", "?")), {})[impl] = rec
        if rec.get("device_name") or rec.get("device"):
            devices.setdefault(impl, rec.get("device_name") or rec.get("device"))
    for (case, precision), sides in timings.items():
        errors += [f"- {LABELS[impl]} {case} {precision}: {rec['error']}"
                   for impl, rec in sides.items() if "error" in rec]

    out = []
    if devices:
        out.append("Devices: " + "; ".join(f"{LABELS[i]} {d}" for i, d in devices.items()) + ".")
        out.append("")
    if timings:
        out += timing_table(timings)
        out.append("")
        out.append("Median over the timed iterations; pairs/s = pairs per iteration / median; "
                   "rk/PT speed = rewardkit pairs/s ÷ PyTorch pairs/s (above 1: rewardkit faster).")
    if errors:
        out += ["", "Errors:"] + errors
    if losses:
        out += ["", "Training losses (same steps, per device):", ""]
        out += losses_table(losses.get("rewardkit"), losses.get("pytorch"))
    print("\n".join(out))


if __name__ == "__main__":
    main()
