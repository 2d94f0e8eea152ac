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
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(train_speed.BACKBONE)
    model = AutoModel.from_pretrained(train_speed.BACKBONE, attn_implementation="eager")
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    head = torch.nn.Linear(model.config.hidden_size, 1)
    params = list(model.named_parameters()) + [("head." + n, p) for n, p in head.named_parameters()]
    decay = [p for n, p in params if p.dim() >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in params if not (p.dim() >= 2 and "LayerNorm" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-5, betas=(0.9, 0.98), eps=1e-8)
    L = args.max_length
    pairs = [(train_speed.text(i, 2 * L), train_speed.text(i + 100, 2 * L), train_speed.text(i + 200, 2 * L))
             for i in range(64)]

    def step(s):
        batch = pairs[(s * 8) % 64:(s * 8) % 64 + 8]
        enc = tok([p for p, _, _ in batch] * 2, [c for _, c, _ in batch] + [r for _, _, r in batch],
                  truncation=True, max_length=L, padding="max_length", return_tensors="pt")
        out = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        r = head(pooled).squeeze(-1)
        loss = torch.nn.functional.softplus(-(r[:8] - r[8:])).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()

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
