#!/usr/bin/env python3
"""PyTorch eager reference on a GPU: MiniLM-L6 reward model scoring and training.

The model is the CPU harness's (benches/compare): a BertModel backbone loaded
with transformers from --backbone, mean pooling over the attention mask, and a
torch.nn.Linear(hidden, 1) head (random, seed 0: only speed is measured here).
fp32 means true fp32: TF32 is off for matmuls and cuDNN.

Cases (--cases, comma-separated):
  score-BxL       one scoring call of B pairs, every pair exactly L tokens.
                  A pair is one (prompt, response) sequence, as in
                  score_compare.py: a call of B pairs is a batch of B
                  sequences. Texts are score_compare.py's fixed pairs
                  (train_speed.text, 2L words each side), so the tokenizer's
                  truncation leaves exactly L tokens and no padding.
  score-BxLreal   one pass over --pairs realistic pairs from --data (JSONL
                  with prompt/chosen/rejected; (prompt, chosen) and (prompt,
                  rejected) are both pairs, shuffled with seed 0, as
                  score_compare.py's real cases), in input order in calls of
                  B pairs, each padded to its longest pair and truncated to L
                  (the tokenizer's own longest_first truncation: the same
                  lengths as rewardkit's rule, other kept tokens). Skipped
                  without --data.
  train-L         one training step, train_speed.py's torch_worker on the
                  device: BT loss -logsigmoid(r_chosen - r_rejected).mean(),
                  AdamW (lr 1e-5, betas 0.9/0.98, eps 1e-8, weight decay 0.1
                  on >=2-dim non-LayerNorm parameters), gradient clipping at
                  1.0, 8 pairs per step (chosen and rejected in one forward
                  batch of 16 sequences, each exactly L tokens), dropout off,
                  fp32 only. As there, the timed step includes tokenization
                  and, here, copying the batch to the device.

Scoring times the model alone under torch.inference_mode() (forward, pooling,
head) on inputs already on the device; tokenization and copies are not timed.
fp16 is torch.autocast("cuda", dtype=torch.float16) around the forward pass
(scoring only; skipped on the CPU). On CUDA the device is synchronised before
each clock read. Every (case, precision) loads a fresh model, after --warmup
untimed iterations runs --iters timed ones, and prints one JSON line on
stdout:

  {"impl": "pytorch", "case": "score-32x256", "precision": "fp32",
   "device": "cuda", "device_name": "NVIDIA H200", "seconds": [...],
   "pairs_per_iter": 32, "peak_mem_mib": 512.3}

seconds: wall seconds of each timed iteration; pairs_per_iter: pairs per
iteration (B; --pairs for a real case; 8 for training); peak_mem_mib:
torch.cuda.max_memory_allocated() over the (case, precision), model loading
included, in MiB (null on the CPU). A case that fails prints a line with
"error" instead of "seconds", the other cases still run, and the exit status
is 1.

--losses N adds N training steps at max length 128 with --lr on the train
cases' batches in order (batch k is pairs 8k..8k+7 of 64, cycling) and prints
{"impl": "pytorch", "case": "losses", "precision": "fp32", "device": ...,
"max_length": 128, "lr": ..., "losses": [loss before each step]}.

Usage:
    python3 benches/gpu/torch_gpu.py --backbone DIR [--device cuda] [--iters 20] [--warmup 3]
        [--cases score-32x256,score-1x128,score-32x512real,train-128,train-256] [--precisions fp32,fp16]
        [--data dev.jsonl] [--pairs 64] [--attn sdpa|eager] [--losses N] [--lr 1e-5]
    python3 benches/gpu/report.py results.jsonl   # the table, next to rewardkit's lines
"""
import argparse
import gc
import json
import os
import platform
import re
import statistics
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenize on the calling thread, as the CPU harness

# The CPU harness's inputs (benches/compare, standard library only at import).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compare"))
from score_compare import dev_pairs as data_pairs  # noqa: E402  (JSONL pairs, chosen and rejected, shuffled)
from train_speed import text  # noqa: E402  (rewardkit::testing::filler_text's words and order)

TRAIN_PAIRS_PER_STEP = 8
LOSSES_MAX_LENGTH = 128


def parse_case(name):
    """("score", B, L, real) or ("train", None, L, False)."""
    m = re.fullmatch(r"score-(\d+)x(\d+)(real)?", name)
    if m and int(m[1]) >= 1 and 8 <= int(m[2]) <= 512:
        return "score", int(m[1]), int(m[2]), bool(m[3])
    m = re.fullmatch(r"train-(\d+)", name)
    if m and 8 <= int(m[1]) <= 512:
        return "train", None, int(m[1]), False
    raise ValueError(f"case {name!r}: expected score-BxL, score-BxLreal or train-L with 8 <= L <= 512")


def train_triples(max_length):
    """train_speed.py's 64 (prompt, chosen, rejected): long enough to truncate to exactly max_length."""
    n = max_length * 2
    return [(text(i, n), text(i + 100, n), text(i + 200, n)) for i in range(64)]


class Bench:
    def __init__(self, args):
        import torch
        import transformers

        self.torch = torch
        self.args = args
        self.cuda = args.device.startswith("cuda")
        if self.cuda and not torch.cuda.is_available():
            sys.exit(f"--device {args.device}: CUDA is not available to torch {torch.__version__}")
        self.device = torch.device(args.device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        if not self.cuda:
            torch.set_num_threads(1)
        transformers.logging.set_verbosity_error()  # no per-load reports or progress bars in the one log
        transformers.logging.disable_progress_bar()
        self.device_name = (torch.cuda.get_device_name(self.device) if self.cuda
                            else platform.processor() or platform.machine())
        self.tok = transformers.AutoTokenizer.from_pretrained(args.backbone)
        print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
              f"device {args.device}: {self.device_name}; attention {args.attn}; TF32 off", file=sys.stderr, flush=True)

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def reward_model(self, add_pooling_layer):
        """Backbone + mean pooling + linear head, on the device; seed 0 for the head."""
        torch = self.torch
        from transformers import AutoModel

        torch.manual_seed(0)
        backbone = AutoModel.from_pretrained(self.args.backbone, attn_implementation=self.args.attn,
                                             add_pooling_layer=add_pooling_layer)

        class RewardModel(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = backbone
                self.head = torch.nn.Linear(backbone.config.hidden_size, 1)

            def forward(self, input_ids, attention_mask, token_type_ids):
                h = self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
                m = attention_mask.unsqueeze(-1).float()
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return self.head(pooled).squeeze(-1)

        return RewardModel().to(self.device)

    def encode(self, prompts, responses, max_length, padding):
        enc = self.tok(list(prompts), list(responses), truncation=True, max_length=max_length, padding=padding,
                       return_tensors="pt")
        return {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids")}

    def timed(self, step):
        """Per-iteration wall seconds of step() after the warm-up iterations."""
        for _ in range(self.args.warmup):
            step()
        self.sync()
        seconds = []
        for _ in range(self.args.iters):
            t0 = time.perf_counter()
            step()
            self.sync()
            seconds.append(time.perf_counter() - t0)
        return seconds

    # ------------------------------------------------------------ cases

    def score_batches(self, batch, length, real):
        """Device-resident inputs of one timed iteration, and its number of pairs."""
        if real:
            pairs = data_pairs(self.args.data)[:self.args.pairs]
            if len(pairs) < self.args.pairs:
                raise ValueError(f"--pairs {self.args.pairs}: {self.args.data} has only {len(pairs)} pairs")
            chunks = [pairs[i:i + batch] for i in range(0, len(pairs), batch)]
            return [self.encode([p for p, _ in c], [r for _, r in c], length, "longest") for c in chunks], len(pairs)
        words = 2 * length
        enc = self.encode([text(i, words) for i in range(batch)], [text(i + 100, words) for i in range(batch)],
                          length, "max_length")
        if tuple(enc["input_ids"].shape) != (batch, length) or not bool(enc["attention_mask"].all()):
            raise RuntimeError(f"fixed pairs did not encode to exactly {length} tokens each")
        return [enc], batch

    def score(self, batch, length, real, precision):
        torch = self.torch
        model = self.reward_model(add_pooling_layer=False).eval()
        inputs, pairs = self.score_batches(batch, length, real)

        def step():
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16,
                                                        enabled=precision == "fp16"):
                for enc in inputs:
                    model(**enc)

        return {"seconds": self.timed(step), "pairs_per_iter": pairs}

    def trainer(self):
        """train_speed.py's torch_worker setup: (model, params, optimizer), dropout off, train mode."""
        torch = self.torch
        model = self.reward_model(add_pooling_layer=True)  # AutoModel's default, as torch_worker loads it
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        params = list(model.named_parameters())
        decay = [p for n, p in params if p.dim() >= 2 and "LayerNorm" not in n]
        no_decay = [p for n, p in params if not (p.dim() >= 2 and "LayerNorm" not in n)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=self.args.lr, betas=(0.9, 0.98), eps=1e-8)
        return model, [p for _, p in params], opt

    def train_step_fn(self, length):
        """A function running the next training step (batches cycle over 64 pairs) and returning its loss tensor."""
        torch = self.torch
        model, params, opt = self.trainer()
        triples = train_triples(length)
        n = TRAIN_PAIRS_PER_STEP
        state = {"step": 0}

        def step():
            k = (state["step"] * n) % len(triples)
            batch = triples[k:k + n]
            state["step"] += 1
            prompts = [p for p, _, _ in batch] * 2
            responses = [c for _, c, _ in batch] + [r for _, _, r in batch]
            r = model(**self.encode(prompts, responses, length, "max_length"))
            loss = torch.nn.functional.softplus(-(r[:n] - r[n:])).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss

        return step

    def train(self, length):
        return {"seconds": self.timed(self.train_step_fn(length)), "pairs_per_iter": TRAIN_PAIRS_PER_STEP}

    def losses(self, steps):
        step = self.train_step_fn(LOSSES_MAX_LENGTH)
        return {"max_length": LOSSES_MAX_LENGTH, "lr": self.args.lr,
                "losses": [float(step().detach()) for _ in range(steps)]}

    # ------------------------------------------------------------ driver

    def run_case(self, case, precision):
        """One JSON record for (case, precision); None where the case does not apply."""
        kind, batch, length, real = parse_case(case)
        skip = None
        if precision == "fp16" and not self.cuda:
            skip = "fp16 runs on CUDA only"
        elif precision == "fp16" and kind == "train":
            skip = "training is fp32 only"
        elif real and not self.args.data:
            skip = "no --data"
        if skip:
            print(f"{case} {precision}: skipped ({skip})", file=sys.stderr, flush=True)
            return None
        return self.measure(case, precision, lambda: self.score(batch, length, real, precision) if kind == "score"
                            else self.train(length))

    def measure(self, case, precision, fn):
        """The record of fn()'s fields (or its error), with the peak device memory over it."""
        torch = self.torch
        record = {"impl": "pytorch", "case": case, "precision": precision, "device": self.args.device,
                  "device_name": self.device_name}
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        try:
            record.update(fn())
        except Exception as e:  # one failing case (say, out of memory) must not lose the others
            record["error"] = f"{type(e).__name__}: {e}"[:2000]
        if "seconds" in record:
            median = statistics.median(record["seconds"])
            summary = f"median {median * 1e3:.2f} ms, {record['pairs_per_iter'] / median:.1f} pairs/s"
        elif "losses" in record:
            summary = f"loss {record['losses'][0]:.4f} -> {record['losses'][-1]:.4f}"
        else:
            summary = record["error"]
        record["peak_mem_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else None
        print(f"{case} {precision}: {summary} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
        return record


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="directory with the BERT backbone and its tokenizer")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iters", type=int, default=20, help="timed iterations per case (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations before them (default 3)")
    ap.add_argument("--cases", default="score-32x256,score-1x128,score-32x512real,train-128,train-256",
                    help="comma-separated; empty for none")
    ap.add_argument("--precisions", default="fp32,fp16", help="comma-separated: fp32, fp16")
    ap.add_argument("--data", help="JSONL with prompt/chosen/rejected for the real cases")
    ap.add_argument("--pairs", type=int, default=64, help="realistic pairs per real-case iteration (default 64)")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--losses", type=int, default=0, metavar="N", help="also print the losses of N training steps")
    ap.add_argument("--lr", type=float, default=1e-5, help="AdamW learning rate (default 1e-5)")
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    precisions = [p for p in args.precisions.split(",") if p]
    try:
        for c in cases:
            parse_case(c)
    except ValueError as e:
        ap.error(str(e))
    if not set(precisions) <= {"fp32", "fp16"}:
        ap.error(f"--precisions {args.precisions}: fp32 and fp16 only")
    if args.iters < 1 or args.warmup < 0 or args.pairs < 1 or args.losses < 0:
        ap.error("--iters and --pairs must be at least 1, --warmup and --losses at least 0")

    bench = Bench(args)
    failed = False
    for case in cases:
        for precision in precisions:
            record = bench.run_case(case, precision)
            if record:
                failed |= "error" in record
                print(json.dumps(record), flush=True)
    if args.losses:
        record = bench.measure("losses", "fp32", lambda: bench.losses(args.losses))
        failed |= "error" in record
        print(json.dumps(record), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
