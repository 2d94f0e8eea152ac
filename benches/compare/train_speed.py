#!/usr/bin/env python3
"""Training speed and memory, rewardkit against a PyTorch eager hand loop.

Both sides: all-MiniLM-L6-v2 reward model (mean pooling, linear head), BT
loss, AdamW (betas 0.9/0.98, weight decay 0.1, clip 1.0), 8 pairs (16
sequences) per step, dropout off, fp32, every sequence exactly MAX_LENGTH
tokens, THREADS intra-op threads. Each measurement is a fresh process (so
peak RSS is its own); the implementations alternate, and the table reports
the median step time over the steps after the first two (warm-up), and the
median of the per-run peak RSS.

Usage (PyTorch is only needed for this script):
    python benches/compare/train_speed.py [--lengths 128 256] [--steps 10] [--rounds 2] [--threads 2]
        [--variants planned standard-ops]
The rewardkit side is `cargo run --release --example train_timing`; each
--variants entry adds a rewardkit row run with that flag of train_timing
(`planned`: ONNX Runtime's pre-planned memory; `standard-ops`: no rewardkit
CPU kernels, every training graph in standard ONNX ops). Default: planned.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKBONE = os.path.join(ROOT, ".rewardkit", "models", "all-MiniLM-L6-v2")

WORDS = ["the", "model", "answer", "question", "because", "water", "system", "people", "should", "would", "important",
         "example", "data", "result", "before", "after", "simple", "careful", "explain", "reason", "value", "number",
         "often", "never", "always", "first", "second", "third", "small", "large", "quick", "slow", "good", "better",
         "best", "clear", "help"]


def text(seed, n):
    return " ".join(WORDS[(seed * 31 + i * 17 + i // 7) % len(WORDS)] for i in range(n))


def torch_training(max_length, threads):
    """The PyTorch hand loop: returns step(s), one training step on batch s,
    tokenizing included."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(BACKBONE)
    model = AutoModel.from_pretrained(BACKBONE, attn_implementation="eager")
    model.train()  # dropout is set to 0 below, as in TRL's reward trainer default
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    head = torch.nn.Linear(model.config.hidden_size, 1)
    params = list(model.named_parameters()) + [("head." + n, p) for n, p in head.named_parameters()]
    decay = [p for n, p in params if p.dim() >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in params if not (p.dim() >= 2 and "LayerNorm" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-5, betas=(0.9, 0.98), eps=1e-8)
    n_words = max_length * 2
    pairs = [(text(i, n_words), text(i + 100, n_words), text(i + 200, n_words)) for i in range(64)]

    def step(s):
        batch = pairs[(s * 8) % 64:(s * 8) % 64 + 8]
        prompts = [p for p, _, _ in batch] * 2
        responses = [c for _, c, _ in batch] + [r for _, _, r in batch]
        enc = tok(prompts, responses, truncation=True, max_length=max_length, padding="max_length", return_tensors="pt")
        out = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        r = head(pooled).squeeze(-1)
        loss = torch.nn.functional.softplus(-(r[:8] - r[8:])).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()

    return step


def torch_worker(max_length, steps, threads):
    step = torch_training(max_length, threads)
    times = []
    for s in range(steps):
        t0 = time.perf_counter()
        step(s)
        times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"impl": "pytorch", "max_length": max_length, "step_seconds": times, "peak_rss_kib": rss}))


def run(cmd, env=None):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="*", choices=["planned", "standard-ops"], default=["planned"])
    ap.add_argument("--worker", choices=["torch"])
    ap.add_argument("--max-length", type=int)
    args = ap.parse_args()
    if args.worker == "torch":
        torch_worker(args.max_length, args.steps, args.threads)
        return
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "train_timing"], cwd=ROOT, check=True)
    rk_bin = os.path.join(ROOT, "target", "release", "examples", "train_timing")
    rows = []
    for L in args.lengths:
        res = {"rewardkit": [], **{f"rewardkit-{v}": [] for v in args.variants}, "pytorch": []}
        for _ in range(args.rounds):
            res["rewardkit"].append(run([rk_bin, str(L), str(args.steps), str(args.threads)]))
            for v in args.variants:
                res[f"rewardkit-{v}"].append(run([rk_bin, str(L), str(args.steps), str(args.threads), v]))
            res["pytorch"].append(run([sys.executable, __file__, "--worker", "torch", "--max-length", str(L),
                                       "--steps", str(args.steps), "--threads", str(args.threads)]))
        summary = {}
        for impl, runs in res.items():
            steady = [t for r in runs for t in r["step_seconds"][2:]]
            summary[impl] = (statistics.median(steady), statistics.median(r["peak_rss_kib"] for r in runs) / 1024 / 1024)
        # The machine's speed drifts between rounds; each round's own ratio
        # (runs seconds apart) shows how far the overall one can be trusted.
        per_round = {impl: [] for impl in res if impl != "pytorch"}
        for k, pt in enumerate(res["pytorch"]):
            pt_t = statistics.median(pt["step_seconds"][2:])
            for impl in per_round:
                per_round[impl].append(pt_t / statistics.median(res[impl][k]["step_seconds"][2:]))
        rows.append((L, summary, per_round))
    print(f"\nMiniLM reward model, BT + AdamW, 8 pairs/step, {args.threads} threads, fp32; "
          f"median of steps 3..{args.steps} over {args.rounds} alternating runs each")
    print(f"{'length':>6} | {'implementation':>21} | {'s/step':>7} | {'speed vs pytorch':>16} | {'peak RSS':>9}")
    for L, s, _ in rows:
        pt = s["pytorch"][0]
        for impl, (t, rss) in sorted(s.items(), key=lambda kv: kv[0] != "pytorch"):
            print(f"{L:>6} | {impl:>21} | {t:>7.3f} | {pt / t:>15.2f}x | {rss:>5.2f} GiB")
    print("\nspeed vs pytorch per round (pytorch's median step / the implementation's, same round):")
    for L, _, per_round in rows:
        for impl, ratios in per_round.items():
            listed = ", ".join(f"{r:.2f}" for r in ratios)
            print(f"{L:>6} | {impl:>21} | {listed} (median {statistics.median(ratios):.2f}x)")


if __name__ == "__main__":
    main()
