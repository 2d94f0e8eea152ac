#!/usr/bin/env python3
"""Scoring (and training) speed and memory: rewardkit next to PyTorch and ONNX Runtime.

One model on every side: the all-MiniLM-L6-v2 reward model (BERT encoder,
mean pooling, a linear head with one output), from the same weights. The
rewardkit bundle comes from `rewardkit init --seed 0`; the PyTorch model is
the backbone loaded with transformers plus a head whose weight and bias are
read from the bundle's model.onnx; the ONNX Runtime sides run that PyTorch
model exported with torch.onnx.export, as exported ("ort") and after
onnxruntime.transformers.optimizer's BERT fusions ("ort-opt": fused
Attention, SkipLayerNormalization, BiasGelu). Before measuring, a parity
check scores a few pairs on every side and refuses to go on if any score
differs from PyTorch's by more than 1e-3.

Sides, all fp32 on the CPU with --threads intra-op threads:
  pytorch    transformers eager mode under torch.inference_mode()
  ort        onnxruntime-python InferenceSession on the plain export
  ort-opt    the same on the optimizer's fused graph
  rewardkit  rewardkit.Scorer (bindings/python, ctypes over the C ABI)

Every call goes from strings to scores: tokenization, padding, the model.
PyTorch and ONNX Runtime get their pairs the way users batch them: chunks of
B in input order, each padded to its longest pair. rewardkit gets the whole
workload in one score_batch call with max_batch = B, sorts it by length and
splits it where padding would cost more than another run (its feature: less
padding). Latency is per call of B pairs
in input order on every side (for rewardkit a second pass of such calls).
PyTorch and ONNX Runtime tokenize with the `tokenizers` library on the
bundle's tokenizer.json and rewardkit's truncation rule (text::tokenizer::
truncation_split: the response keeps priority, the prompt keeps at least a
quarter of the budget, the prompt's end and the response's start are kept),
so every side sees the same tokens; per-case score agreement is reported too.
Tokenization runs on the calling thread on every side (TOKENIZERS_PARALLELISM
is off, and rewardkit encodes sequentially).

Cases:
  real-BxL    realistic pairs: (prompt, chosen) and (prompt, rejected) from
              ../shared/data/dev.jsonl, shuffled with seed 0, the first
              --pairs of them, batch B, max length L
  fixed-BxL   synthetic pairs long enough that each encodes to exactly L
              tokens (no padding anywhere)
The defaults are issue 7's three targets: fixed-32x256 (pairs/s),
real-32x512 (pairs/s) and fixed-1x128 (single-pair latency). --grid adds
real-BxL for B in --batches and L in --lengths.

Each (side, case) measurement is a fresh process (its peak RSS is its own:
VmHWM, which includes the interpreter and the side's libraries); sides
alternate within a round, the starting side rotating each round; the table
reports medians over rounds. Training rows reuse train_speed.py (same
method: rewardkit's train_timing example against a PyTorch hand loop).

Usage (PyTorch and transformers are needed only for this script):
    python -m venv /tmp/cmpenv
    /tmp/cmpenv/bin/pip install -r benches/compare/requirements.txt
    /tmp/cmpenv/bin/python benches/compare/score_compare.py [--grid] [--json out.json]
See --help and benches/README.md for the options.
"""
import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BACKBONE = os.path.join(ROOT, ".rewardkit", "models", "all-MiniLM-L6-v2")
DEV = os.path.join(os.path.dirname(ROOT), "shared", "data", "dev.jsonl")
BINDINGS = os.path.join(ROOT, "bindings", "python")
sys.path.insert(0, HERE)
import train_speed  # noqa: E402  (beside this file: its text generator and training runs)

IMPLS = ["pytorch", "ort", "ort-opt", "rewardkit"]
LABELS = {"pytorch": "PyTorch", "ort": "ORT", "ort-opt": "ORT-opt", "rewardkit": "rewardkit"}
TARGET_CASES = ["fixed-32x256", "real-32x512", "fixed-1x128"]
PARITY_TOL = 1e-3
SCORES = "scores"


# ---------------------------------------------------------------- inputs


def dev_pairs(path=DEV, seed=0):
    """(prompt, response) pairs from dev.jsonl: chosen and rejected both, shuffled."""
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                pairs.append((row["prompt"], row["chosen"]))
                pairs.append((row["prompt"], row["rejected"]))
    random.Random(seed).shuffle(pairs)
    return pairs


def fixed_pairs(n, length):
    """Pairs long enough that rewardkit's truncation cuts each to exactly `length` tokens."""
    words = length * 2
    return [(train_speed.text(i, words), train_speed.text(i + 100, words)) for i in range(n)]


def parse_case(name):
    kind, _, shape = name.partition("-")
    b, _, l = shape.partition("x")
    if kind not in ("real", "fixed") or not b.isdigit() or not l.isdigit() or int(b) < 1 or int(l) < 8:
        raise ValueError(f"case {name!r}: expected real-BxL or fixed-BxL, e.g. real-32x512")
    return kind, int(b), int(l)


def case_pairs(name, n_real, fixed_calls):
    kind, batch, length = parse_case(name)
    if kind == "real":
        pairs = dev_pairs()
        if n_real > len(pairs):
            raise ValueError(f"--pairs {n_real}: dev.jsonl has only {len(pairs)} pairs")
        return pairs[:n_real]
    # --fixed-calls calls of B pairs, but at least 64 pairs so small batches
    # get enough calls for their latency percentiles.
    return fixed_pairs(batch * max(fixed_calls, math.ceil(64 / batch)), length)


def chunks(n, batch):
    return [(i, min(i + batch, n)) for i in range(0, n, batch)]


class PairEncoder:
    """rewardkit's pair encoding (src/text/tokenizer.rs) with the `tokenizers` library.

    Padding and truncation configured in tokenizer.json are cleared; prompt
    and response are encoded without special tokens, cut by
    truncation_split (keep the prompt's end, the response's start), then
    joined by the tokenizer's post-processor ([CLS] p [SEP] r [SEP] for BERT).
    """

    def __init__(self, tokenizer_json, max_length):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(tokenizer_json)
        self.tok.no_padding()
        self.tok.no_truncation()
        self.special = self.tok.post_processor.num_special_tokens_to_add(True) if self.tok.post_processor else 0
        pad = self.tok.token_to_id("[PAD]")
        self.pad_id = pad if pad is not None else 0
        self.max_length = max_length

    @staticmethod
    def split(prompt_len, response_len, budget):
        """truncation_split from src/text/tokenizer.rs."""
        if prompt_len + response_len <= budget:
            return prompt_len, response_len
        prompt_reserve = min(prompt_len, budget // 4)
        keep_response = min(response_len, budget - prompt_reserve)
        keep_prompt = min(prompt_len, budget - keep_response)
        return keep_prompt, keep_response

    def encode(self, prompts, responses):
        """[(ids, type_ids)] per pair."""
        ps = self.tok.encode_batch(list(prompts), add_special_tokens=False)
        rs = self.tok.encode_batch(list(responses), add_special_tokens=False)
        budget = self.max_length - self.special
        out = []
        for p, r in zip(ps, rs):
            kp, kr = self.split(len(p), len(r), budget)
            if kp < len(p):
                p.truncate(kp, direction="left")
            if kr < len(r):
                r.truncate(kr, direction="right")
            e = self.tok.post_process(p, r, add_special_tokens=True)
            out.append((e.ids, e.type_ids))
        return out

    def lengths(self, pairs):
        return [len(ids) for ids, _ in self.encode([p for p, _ in pairs], [r for _, r in pairs])]

    def batch(self, prompts, responses):
        """Padded int64 arrays (input_ids, attention_mask, token_type_ids), padded to the longest."""
        import numpy as np

        enc = self.encode(prompts, responses)
        width = max(len(ids) for ids, _ in enc)
        ids = np.full((len(enc), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(enc), width), dtype=np.int64)
        types = np.zeros((len(enc), width), dtype=np.int64)
        for i, (t, tt) in enumerate(enc):
            ids[i, : len(t)] = t
            mask[i, : len(t)] = 1
            types[i, : len(t)] = tt
        return ids, mask, types


# rewardkit's batching (src/engine/scorer.rs, run_ends): sorted by length, split
# into runs of at most max_batch pairs and max_tokens padded tokens, choosing
# the split with the fewest padded tokens plus RK_RUN_COST_TOKENS per run.
RK_RUN_COST_TOKENS = 64
RK_MAX_TOKENS = 2048  # engine::DEFAULT_MAX_TOKENS (the CPU default)


def rk_runs(sorted_lengths, max_batch, max_tokens=RK_MAX_TOKENS):
    """(start, end) of each run rewardkit makes from lengths sorted ascending."""
    n = len(sorted_lengths)
    best = [math.inf] * (n + 1)
    start = [0] * (n + 1)
    best[0] = 0
    for j in range(1, n + 1):
        longest = max(sorted_lengths[j - 1], 1)
        for count in range(1, min(max_batch, j) + 1):
            tokens = count * longest
            if count > 1 and max_tokens and tokens > max_tokens:
                break
            cost = best[j - count] + tokens + RK_RUN_COST_TOKENS
            if cost < best[j]:
                best[j], start[j] = cost, j - count
    runs, j = [], n
    while j > 0:
        runs.append((start[j], j))
        j = start[j]
    return runs[::-1]


def token_stats(lengths, batch):
    """Mean real tokens per pair, and mean padded tokens per pair in input
    order (chunks of `batch`) and as rewardkit batches them."""
    def padded(ls, runs):
        return sum(max(ls[a:b]) * (b - a) for a, b in runs)

    n = len(lengths)
    ordered = sorted(lengths)
    return {
        "real": sum(lengths) / n,
        "padded_in_order": padded(lengths, chunks(n, batch)) / n,
        "padded_sorted": padded(ordered, rk_runs(ordered, batch)) / n,
        "max": max(lengths),
    }


# ---------------------------------------------------------------- models


def work_paths(workdir):
    return {
        "bundle": os.path.join(workdir, "bundle"),
        "export": os.path.join(workdir, "export", "model.onnx"),
        "opt": os.path.join(workdir, "export", "model.opt.onnx"),
        "lib": os.path.join(workdir, "lib", "librewardkit.so"),
        "head": os.path.join(workdir, "head.npz"),
        "prep": os.path.join(workdir, "prepare.json"),
    }


def read_head(bundle, out_npz):
    """The bundle's head (initializers reward_head.weight [1, hidden] and reward_head.bias [1]) to an .npz.

    Read once by the prepare step, so the measured PyTorch processes need not import onnx.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(os.path.join(bundle, "model.onnx"), load_external_data=True).graph
    init = {t.name: t for t in graph.initializer}
    missing = [n for n in ("reward_head.weight", "reward_head.bias") if n not in init]
    if missing:
        raise SystemExit(f"{bundle}/model.onnx has no initializer {missing}")
    np.savez(out_npz, weight=numpy_helper.to_array(init["reward_head.weight"]),
             bias=numpy_helper.to_array(init["reward_head.bias"]))


def torch_model(head_npz, attn):
    """The backbone with transformers and the bundle's head: scores [batch, 1]."""
    import numpy as np
    import torch
    from transformers import AutoModel

    head = np.load(head_npz)
    weight, bias = head["weight"], head["bias"]  # [n_out, hidden] as nn.Linear stores it; [n_out]

    class RewardModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = AutoModel.from_pretrained(BACKBONE, attn_implementation=attn, add_pooling_layer=False)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, weight.shape[0])
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(weight))
                self.head.bias.copy_(torch.from_numpy(bias))

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            # The bundle's pooling: sum over real tokens / max(count, 1e-9).
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return self.head(pooled)

    return RewardModel().eval()


def ort_session(path, threads, optimized_out=None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if optimized_out:
        so.optimized_model_filepath = optimized_out
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


class TorchSide:
    def __init__(self, paths, threads, batch, max_length, attn):
        import importlib

        import torch

        importlib.import_module("transformers")  # so imported_rss_kib counts it

        self.imported_rss_kib = rss_kib()
        torch.set_num_threads(threads)
        self.torch = torch
        self.enc = PairEncoder(os.path.join(paths["bundle"], "tokenizer.json"), max_length)
        self.model = torch_model(paths["head"], attn)

    def set_max_length(self, max_length):
        self.enc.max_length = max_length

    def call(self, prompts, responses):
        torch = self.torch
        ids, mask, types = self.enc.batch(prompts, responses)
        with torch.inference_mode():
            out = self.model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
        return out[:, 0].numpy()


class OrtSide:
    def __init__(self, model_path, paths, threads, batch, max_length):
        import importlib

        import numpy as np

        importlib.import_module("onnxruntime")  # so imported_rss_kib counts it

        self.imported_rss_kib = rss_kib()
        self.enc = PairEncoder(os.path.join(paths["bundle"], "tokenizer.json"), max_length)
        self.sess = ort_session(model_path, threads)
        # The optimizer may turn inputs into int32; feed what the graph declares.
        self.types = {i.name: (np.int32 if i.type == "tensor(int32)" else np.int64) for i in self.sess.get_inputs()}

    def set_max_length(self, max_length):
        self.enc.max_length = max_length

    def call(self, prompts, responses):
        ids, mask, types = self.enc.batch(prompts, responses)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feed = {k: v.astype(self.types[k], copy=False) for k, v in feed.items() if k in self.types}
        return self.sess.run([SCORES], feed)[0][:, 0]


class RewardkitSide:
    sorts = True

    def __init__(self, paths, threads, batch, max_length):
        os.environ["REWARDKIT_LIB"] = paths["lib"]
        sys.path.insert(0, BINDINGS)
        import rewardkit

        rewardkit.version()  # loads librewardkit (and with it ONNX Runtime)
        self.imported_rss_kib = rss_kib()
        self.open = lambda length: rewardkit.Scorer(paths["bundle"], threads=threads, max_batch=batch, max_length=length)
        self.scorer = self.open(max_length)

    def set_max_length(self, max_length):
        self.scorer.close()
        self.scorer = self.open(max_length)

    def call(self, prompts, responses):
        return self.scorer.score_batch(prompts, responses, as_numpy=True)


def make_side(impl, paths, threads, batch, max_length, attn):
    if impl == "pytorch":
        return TorchSide(paths, threads, batch, max_length, attn)
    if impl == "ort":
        return OrtSide(paths["export"], paths, threads, batch, max_length)
    if impl == "ort-opt":
        return OrtSide(paths["opt"], paths, threads, batch, max_length)
    if impl == "rewardkit":
        return RewardkitSide(paths, threads, batch, max_length)
    raise ValueError(impl)


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return None


def peak_rss_kib():
    """Peak resident set of this process (VmHWM; ru_maxrss where /proc has none)."""
    try:
        return _status_kib("VmHWM:")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_kib():
    try:
        return _status_kib("VmRSS:")
    except OSError:
        return None


# ---------------------------------------------------------------- workers (fresh processes)


def worker_measure(args):
    """One (side, case) measurement; prints one JSON line."""
    paths = work_paths(args.workdir)
    kind, batch, length = parse_case(args.case)
    pairs = case_pairs(args.case, args.pairs, args.fixed_calls)
    prompts = [p for p, _ in pairs]
    responses = [r for _, r in pairs]
    spans = chunks(len(pairs), batch)

    t0 = time.perf_counter()
    side = make_side(args.worker_impl, paths, args.threads, batch, length, args.torch_attn)
    load_s = time.perf_counter() - t0

    def call(a, b):
        return side.call(prompts[a:b], responses[a:b])

    # Warm-up on the chunk with the longest padded shape (sizes ORT's arena,
    # pages in the weights, fills caches), not timed.
    call(*spans[args.warm_chunk])

    # rewardkit's whole-workload call only differs from per-chunk calls when
    # lengths differ; on fixed shapes its per-chunk calls serve for both.
    one_call = args.worker_impl == "rewardkit" and kind == "real"
    pass_s, call_s, scores = [], [], None
    for _ in range(args.passes):
        if one_call:
            t = time.perf_counter()
            scores = call(0, len(pairs))
            pass_s.append(time.perf_counter() - t)
        else:
            parts, total = [], 0.0
            for a, b in spans:
                t = time.perf_counter()
                parts.append(call(a, b))
                dt = time.perf_counter() - t
                call_s.append(dt)
                total += dt
            pass_s.append(total)
            scores = [float(x) for p in parts for x in p]
    if one_call:
        for _ in range(args.passes):
            for a, b in spans:
                t = time.perf_counter()
                call(a, b)
                call_s.append(time.perf_counter() - t)
    print(json.dumps({
        "impl": args.worker_impl, "case": args.case, "pairs": len(pairs), "batch": batch, "max_length": length,
        "load_seconds": load_s, "pass_seconds": pass_s, "call_seconds": call_s,
        "scores": [float(x) for x in scores], "peak_rss_kib": peak_rss_kib(),
        "imported_rss_kib": getattr(side, "imported_rss_kib", None),
        "load_average_1min": os.getloadavg()[0],
    }))


def op_histogram(path):
    import onnx

    m = onnx.load(path, load_external_data=False)
    hist = {}
    for n in m.graph.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    return dict(sorted(hist.items(), key=lambda kv: -kv[1]))


def worker_prepare(args):
    """Bundle, PyTorch model, ONNX export and fused graph; prints one JSON line."""
    import torch

    paths = work_paths(args.workdir)
    info = {}
    t = time.perf_counter()
    read_head(paths["bundle"], paths["head"])
    model = torch_model(paths["head"], "eager")  # eager attention: the pattern ORT's fusions match
    os.makedirs(os.path.dirname(paths["export"]), exist_ok=True)
    ids = torch.ones((2, 16), dtype=torch.int64)
    dyn = {0: "batch", 1: "sequence"}
    export_kwargs = dict(
        input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=[SCORES],
        dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn, SCORES: {0: "batch"}},
        opset_version=17, do_constant_folding=True,
    )
    with torch.no_grad():
        try:
            torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), paths["export"],
                              dynamo=False, **export_kwargs)
            info["exporter"] = "torchscript (dynamo=False)"
        except TypeError:  # a torch without the dynamo switch
            torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), paths["export"],
                              **export_kwargs)
            info["exporter"] = "torch.onnx.export default"
    info["export_seconds"] = time.perf_counter() - t

    t = time.perf_counter()
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        cfg = model.encoder.config
        opt = optimize_model(paths["export"], model_type="bert", num_heads=cfg.num_attention_heads,
                             hidden_size=cfg.hidden_size, use_gpu=False)
        info["fused_ops"] = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        opt.save_model_to_file(paths["opt"])
    except Exception as e:  # the optimizer is optional: the harness drops ort-opt without it
        info["optimizer_error"] = f"{type(e).__name__}: {e}"
        if os.path.exists(paths["opt"]):
            os.remove(paths["opt"])
    info["optimize_seconds"] = time.perf_counter() - t

    # What ONNX Runtime actually runs after its own session-level fusions.
    graphs = {"rewardkit": os.path.join(paths["bundle"], "model.onnx"), "ort": paths["export"], "ort-opt": paths["opt"]}
    info["graph_ops"], info["session_ops"] = {}, {}
    for name, path in graphs.items():
        if not os.path.exists(path):
            continue
        info["graph_ops"][name] = op_histogram(path)
        out = os.path.join(args.workdir, "export", f"session-{name}.onnx")
        ort_session(path, args.threads, optimized_out=out)
        info["session_ops"][name] = op_histogram(out)
        for f in (out, out + ".data"):
            if os.path.exists(f):
                os.remove(f)
    print(json.dumps(info))


def worker_parity(args):
    """Score a few pairs on every side; prints one JSON line with the largest differences."""
    paths = work_paths(args.workdir)
    real = dev_pairs()
    tok_json = os.path.join(paths["bundle"], "tokenizer.json")
    enc512 = PairEncoder(tok_json, 512)
    lens = enc512.lengths(real[:200])
    order = sorted(range(len(lens)), key=lambda i: lens[i])
    # Short, middle and long (truncated at 512) pairs; all of them also at 128.
    picked = [real[i] for i in order[:2] + order[len(order) // 2: len(order) // 2 + 2] + order[-2:]]
    sets = [("real", 512, picked), ("real", 128, picked), ("fixed", 256, fixed_pairs(2, 256))]
    impls = [i for i in args.impls if i != "ort-opt" or os.path.exists(paths["opt"])]
    report = {"tolerance": PARITY_TOL, "sets": []}
    worst = 0.0
    got = [{} for _ in sets]
    for impl in impls:
        side = make_side(impl, paths, args.threads, 8, 512, args.torch_attn)
        for k, (kind, length, pairs) in enumerate(sets):
            side.set_max_length(length)
            one = [float(side.call([p], [r])[0]) for p, r in pairs]
            # All at once too: padding and masks must not change a score.
            batched = [float(x) for x in side.call([p for p, _ in pairs], [r for _, r in pairs])]
            got[k][impl] = {"one": one, "batch": batched}
        del side
    for k, (kind, length, pairs) in enumerate(sets):
        ref = got[k]["pytorch"]
        diffs = {}
        for impl in impls:
            d = max(abs(a - b) for how in ("one", "batch") for a, b in zip(got[k][impl][how], ref["one"]))
            diffs[impl] = d
            worst = max(worst, d)
        report["sets"].append({"kind": kind, "max_length": length, "pairs": len(pairs),
                               "tokens": PairEncoder(tok_json, length).lengths(pairs),
                               "pytorch_scores": ref["one"], "max_abs_diff_vs_pytorch": diffs})
    report["max_abs_diff"] = worst
    report["ok"] = worst <= PARITY_TOL
    print(json.dumps(report))


# ---------------------------------------------------------------- the driver


def spawn(args, role, **extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", role, "--workdir", args.workdir,
           "--threads", str(args.threads), "--pairs", str(args.pairs), "--passes", str(args.passes),
           "--fixed-calls", str(args.fixed_calls),
           "--torch-attn", args.torch_attn, "--impls", *args.impls]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    # Tokenization stays on the calling thread on every side (rewardkit's does).
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if args.omp_wait_policy == "passive" and extra.get("worker_impl") == "pytorch":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": f"{role} {extra} exited {out.returncode}: {out.stderr.strip()[-2000:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare(args, paths):
    """Fresh bundle (so it matches the library measured), a frozen copy of the library, export, fusion."""
    for tool in (args.cli, args.lib):
        if not os.path.exists(tool):
            sys.exit(f"{tool} not found: build it (cargo build --release), pass --lib/--cli, or use --build")
    os.makedirs(os.path.dirname(paths["lib"]), exist_ok=True)
    shutil.copy2(args.lib, paths["lib"])  # a rebuild during the run must not change what is measured
    cmd = [args.cli, "init", "--backbone", BACKBONE, "--out", paths["bundle"], "--max-length", "512",
           "--seed", "0", "--force"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    info = spawn(args, "prepare")
    if "error" in info:
        sys.exit(info["error"])
    with open(paths["prep"], "w") as f:
        json.dump(info, f)
    return info


def percentile(sorted_values, q):
    """Nearest rank, as bindings/python/bench.py."""
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def summarize(runs):
    """Medians over a side's runs of one case."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None
    rates = [r["pairs"] / s for r in ok for s in r["pass_seconds"]]
    calls = sorted(c for r in ok for c in r["call_seconds"])
    return {
        "pairs_per_s": statistics.median(rates),
        "p50_ms": percentile(calls, 0.50) * 1e3,
        "p99_ms": percentile(calls, 0.99) * 1e3,
        "calls": len(calls),
        "peak_rss_mib": statistics.median(r["peak_rss_kib"] for r in ok) / 1024,
        "load_s": statistics.median(r["load_seconds"] for r in ok),
        "imported_rss_mib": statistics.median(r.get("imported_rss_kib") or 0 for r in ok) / 1024,
    }


def summarize_train(runs):
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None
    steady = sorted(t for r in ok for t in r["step_seconds"][2:]) or sorted(t for r in ok for t in r["step_seconds"])
    return {
        "steps_per_s": 1.0 / statistics.median(steady),
        "p50_ms": percentile(steady, 0.5) * 1e3,
        "p99_ms": percentile(steady, 0.99) * 1e3,
        "peak_rss_mib": statistics.median(r["peak_rss_kib"] for r in ok) / 1024,
    }


def train_once(args, impl, length):
    """One training measurement through train_speed.py's own commands."""
    if impl == "pytorch":
        cmd = [sys.executable, train_speed.__file__, "--worker", "torch", "--max-length", str(length),
               "--steps", str(args.train_steps), "--threads", str(args.threads)]
    else:
        cmd = [args.train_bin, str(length), str(args.train_steps), str(args.threads)]
        if impl == "rewardkit-planned":
            cmd.append("planned")
    try:
        return train_speed.run(cmd)
    except SystemExit as e:  # train_speed.run exits on failure; keep the other measurements
        return {"error": str(e)[-2000:]}


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def table(args, results, toks, train, impls):
    lines = []
    head = ["case", "unit"] + [LABELS[i] for i in impls] + ["rk/PT"]
    if "ort-opt" in impls:
        head.append("rk/ORT-opt")
    head += [f"p50/p99 ms {LABELS[i]}" for i in impls] + [f"RSS MiB {LABELS[i]}" for i in impls]
    head.append("tokens/pair real · padded PT · rk")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))

    def row(case, unit, s, tok):
        rate = {i: (s[i] or {}).get(unit) if s.get(i) else None for i in impls}
        pt, rk = rate.get("pytorch"), rate.get("rewardkit")
        cells = [case, unit.replace("_per_s", "/s")] + [fmt(rate[i], ".1f" if unit == "pairs_per_s" else ".2f") for i in impls]
        cells.append(fmt(rk / pt, ".2f") + "×" if pt and rk else "—")
        if "ort-opt" in impls:
            oo = rate.get("ort-opt")
            cells.append(fmt(rk / oo, ".2f") + "×" if oo and rk else "—")
        cells += [f"{s[i]['p50_ms']:.1f} / {s[i]['p99_ms']:.1f}" if s.get(i) else "—" for i in impls]
        cells += [f"{s[i]['peak_rss_mib']:.0f}" if s.get(i) else "—" for i in impls]
        cells.append(tok)
        lines.append("| " + " | ".join(cells) + " |")

    for case in args.cases:
        s = {i: summarize(results[case][i]) for i in impls}
        t = toks[case]
        row(case, "pairs_per_s", s, f"{t['real']:.0f} · {t['padded_in_order']:.0f} · {t['padded_sorted']:.0f}")
    for length in args.train_lengths:
        for variant in ("rewardkit", "rewardkit-planned"):
            if variant == "rewardkit-planned" and not args.train_planned:
                continue
            s = {"pytorch": summarize_train(train[length]["pytorch"]),
                 "rewardkit": summarize_train(train[length][variant])}
            name = f"train 8 pairs×{length}" + (" (rk planned memory)" if variant != "rewardkit" else "")
            row(name, "steps_per_s", s, f"{length} · {length} · {length}")
    return "\n".join(lines)


def targets(results):
    """Issue 7's three targets, where their cases were run."""
    out = []

    def s(case, impl):
        return summarize(results[case][impl]) if case in results and results[case].get(impl) else None

    for case, what, goal in (("fixed-32x256", "pairs/s", 1.3), ("real-32x512", "pairs/s", 2.0)):
        pt, rk = s(case, "pytorch"), s(case, "rewardkit")
        if pt and rk:
            r = rk["pairs_per_s"] / pt["pairs_per_s"]
            out.append(f"- {case}: rewardkit/PyTorch {what} = {r:.2f}× (target ≥ {goal}×): {'met' if r >= goal else 'NOT met'}")
    pt, rk = s("fixed-1x128", "pytorch"), s("fixed-1x128", "rewardkit")
    if pt and rk:
        r = rk["p50_ms"] / pt["p50_ms"]
        out.append(f"- fixed-1x128: rewardkit/PyTorch p50 latency = {r:.2f}× (target ≤ 0.8×): {'met' if r <= 0.8 else 'NOT met'}")
    return out


def run_rate(r):
    """One scoring run's pairs/s (median over its passes)."""
    return statistics.median(r["pairs"] / s for s in r["pass_seconds"])


def run_step(r):
    """One training run's median step, after 2 warm-up steps."""
    return statistics.median(r["step_seconds"][2:] or r["step_seconds"])


def per_round(args, results, train):
    """rewardkit against PyTorch round by round (both measured in the same
    round, minutes apart at most): {row name: (what, [ratio or None])}. The
    spread of these is the machine's noise; the table's ratio of medians hides it."""
    def run_p50(r):
        return percentile(sorted(r["call_seconds"]), 0.50)

    rows = {}
    for case in args.cases:
        latency = case == "fixed-1x128"
        what = "p50 latency, rewardkit/PyTorch" if latency else "pairs/s, rewardkit/PyTorch"
        ratios = []
        for pt, rk in zip(results[case].get("pytorch", []), results[case].get("rewardkit", [])):
            if "error" in pt or "error" in rk:
                ratios.append(None)
            elif latency:
                ratios.append(run_p50(rk) / run_p50(pt))
            else:
                ratios.append(run_rate(rk) / run_rate(pt))
        rows[case] = (what, ratios)
    for length in args.train_lengths:
        ratios = [None if "error" in pt or "error" in rk else run_step(pt) / run_step(rk)
                  for pt, rk in zip(train[length]["pytorch"], train[length]["rewardkit"])]
        rows[f"train 8 pairs×{length}"] = ("steps/s, rewardkit/PyTorch", ratios)
    return rows


def per_round_lines(rows):
    lines = []
    for name, (what, ratios) in rows.items():
        ok = [r for r in ratios if r is not None]
        if not ok:
            continue
        cells = ", ".join("—" if r is None else f"{r:.2f}" for r in ratios)
        lines.append(f"- {name} ({what}): {cells} (median {statistics.median(ok):.2f}×)")
    if lines:
        lines.insert(0, "Per round (both sides measured in the same round; the spread is the machine's noise):")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=None,
                    help=f"cases to run, real-BxL or fixed-BxL (default: {' '.join(TARGET_CASES)})")
    ap.add_argument("--grid", action="store_true", help="add real-BxL for every --batches × --lengths")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--pairs", type=int, default=64,
                    help="realistic pairs per workload (default 64; rewardkit's sorting gains grow with pairs/B)")
    ap.add_argument("--fixed-calls", type=int, default=2,
                    help="calls of B pairs per fixed-shape workload, at least 64 pairs (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--passes", type=int, default=1, help="timed passes over the workload per process (default 1)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 1 round, 32 realistic pairs, 1 training round of 3 steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--impls", nargs="+", default=IMPLS, choices=IMPLS)
    ap.add_argument("--torch-attn", default="sdpa", choices=["sdpa", "eager"],
                    help="transformers attention for the PyTorch side (default sdpa, transformers' own default)")
    ap.add_argument("--omp-wait-policy", choices=["default", "passive"], default="default",
                    help="passive: OMP_WAIT_POLICY=PASSIVE for the PyTorch processes (kinder to a busy machine)")
    ap.add_argument("--train-lengths", type=int, nargs="*", default=[128],
                    help="training rows (train_speed.py's method); none: no training rows")
    ap.add_argument("--train-steps", type=int, default=4, help="steps per training run; the first 2 are warm-up")
    ap.add_argument("--train-rounds", type=int, default=2, help="rounds with training runs (default 2, at most --rounds)")
    ap.add_argument("--train-planned", action="store_true",
                    help="also rewardkit training with low_memory = false (ONNX Runtime's pre-planned memory)")
    ap.add_argument("--lib", default=os.path.join(ROOT, "target", "release", "librewardkit.so"))
    ap.add_argument("--cli", default=os.path.join(ROOT, "target", "release", "rewardkit"))
    ap.add_argument("--train-bin", default=os.path.join(ROOT, "target", "release", "examples", "train_timing"))
    ap.add_argument("--build", action="store_true",
                    help="cargo build --release (library, CLI, train_timing example) first")
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "rewardkit-score-compare"))
    ap.add_argument("--json", help="write every raw measurement here")
    ap.add_argument("--worker", choices=["measure", "prepare", "parity"], help=argparse.SUPPRESS)
    ap.add_argument("--worker-impl", choices=IMPLS, help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--warm-chunk", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker == "measure":
        return worker_measure(args)
    if args.worker == "prepare":
        return worker_prepare(args)
    if args.worker == "parity":
        return worker_parity(args)

    if args.quick:
        args.rounds, args.pairs, args.train_rounds, args.train_steps = 1, 32, 1, 3
    if "pytorch" not in args.impls:
        sys.exit("--impls must include pytorch: it is the reference for parity and ratios")
    cases = list(args.cases or TARGET_CASES)
    if args.grid:
        cases += [f"real-{b}x{l}" for l in args.lengths for b in args.batches]
    args.cases = list(dict.fromkeys(cases))
    for c in args.cases:
        try:
            if parse_case(c)[2] > 512:
                raise ValueError(f"case {c}: the bundle's max length is 512")
        except ValueError as e:
            ap.error(str(e))

    if args.build:
        for extra in ([], ["--example", "train_timing"]):
            subprocess.run(["cargo", "build", "--release", "--quiet", *extra], cwd=ROOT, check=True)
    paths = work_paths(args.workdir)
    load_before = os.getloadavg()
    started = time.time()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    log(f"preparing in {args.workdir}: bundle, torch export, ORT fusions ...")
    prep = prepare(args, paths)
    impls = [i for i in args.impls if i != "ort-opt" or os.path.exists(paths["opt"])]
    if len(impls) < len(args.impls):
        log(f"no fused graph ({prep.get('optimizer_error')}): ort-opt left out")

    log("parity check ...")
    parity = spawn(args, "parity")
    if "error" in parity:
        sys.exit(parity["error"])
    for s in parity["sets"]:
        log(f"  {s['kind']} L={s['max_length']} tokens {s['tokens']}: max |score - PyTorch| "
            + ", ".join(f"{LABELS[k]} {v:.2e}" for k, v in s["max_abs_diff_vs_pytorch"].items()))
    if not parity["ok"]:
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"parity": parity, "prepare": prep}, f, indent=1)
        sys.exit(f"parity check failed: scores differ by up to {parity['max_abs_diff']:.3g} "
                 f"(> {PARITY_TOL}); not reporting timings")

    toks, warm = {}, {}
    for case in args.cases:
        _, batch, length = parse_case(case)
        enc = PairEncoder(os.path.join(paths["bundle"], "tokenizer.json"), length)
        lens = enc.lengths(case_pairs(case, args.pairs, args.fixed_calls))
        toks[case] = token_stats(lens, batch)
        spans = chunks(len(lens), batch)
        warm[case] = max(range(len(spans)), key=lambda k: max(lens[spans[k][0]:spans[k][1]]) * (spans[k][1] - spans[k][0]))

    train_impls = ["pytorch", "rewardkit"] + (["rewardkit-planned"] if args.train_planned else [])
    if args.train_lengths and not os.path.exists(args.train_bin):
        log(f"{args.train_bin} not found (cargo build --release --example train_timing, or --build): "
            "training rows have PyTorch only")
        train_impls = ["pytorch"]
    results = {c: {i: [] for i in impls} for c in args.cases}
    train = {length: {i: [] for i in ["pytorch", "rewardkit", "rewardkit-planned"]} for length in args.train_lengths}
    for rnd in range(args.rounds):
        order = impls[rnd % len(impls):] + impls[:rnd % len(impls)]
        for case in args.cases:
            for impl in order:
                t = time.time()
                r = spawn(args, "measure", worker_impl=impl, case=case, warm_chunk=warm[case])
                results[case][impl].append(r)
                msg = r["error"] if "error" in r else (
                    f"{run_rate(r):.1f} pairs/s, "
                    f"{r['peak_rss_kib'] / 1024:.0f} MiB")
                log(f"[round {rnd + 1}/{args.rounds}] {case} {impl}: {msg} ({time.time() - t:.0f} s)")
        torder = train_impls[rnd % len(train_impls):] + train_impls[:rnd % len(train_impls)]
        for length in args.train_lengths if rnd < args.train_rounds else []:
            for impl in torder:
                t = time.time()
                r = train_once(args, impl, length)
                train[length][impl].append(r)
                msg = r["error"] if "error" in r else f"{run_step(r):.3f} s/step"
                log(f"[round {rnd + 1}/{args.rounds}] train {length} {impl}: {msg} ({time.time() - t:.0f} s)")

    # The same inputs must give the same scores on every side, in every case.
    agreement = {}
    for case in args.cases:
        ref = next((r["scores"] for r in results[case]["pytorch"] if "error" not in r), None)
        agreement[case] = {}
        for impl in impls:
            got = next((r["scores"] for r in results[case][impl] if "error" not in r), None)
            if ref and got:
                agreement[case][impl] = max(abs(a - b) for a, b in zip(ref, got))
    disagree = {c: d for c, v in agreement.items() for i, d in v.items() if d > PARITY_TOL}

    load_after = os.getloadavg()
    import onnxruntime
    import torch
    import transformers

    out = [
        "",
        f"MiniLM-L6 reward model (mean pooling, linear head), fp32 CPU, {args.threads} threads; "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), load average "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after; torch {torch.__version__}, "
        f"transformers {transformers.__version__}, onnxruntime {onnxruntime.__version__}.",
        f"Medians over {args.rounds} alternating rounds (fresh process per side and case, {args.passes} timed "
        f"pass(es) each); realistic workloads are {args.pairs} dev.jsonl pairs.",
        "",
        table(args, results, toks, train, impls),
        "",
        "Notes: every call is strings → scores (tokenize, pad, run). PyTorch/ORT pad each batch of B to its "
        "longest in input order; rewardkit gets the whole workload in one score_batch call (max_batch = B) and "
        "sorts by length and splits where padding costs more than a run (its feature), hence its smaller padded tokens/pair. p50/p99 are per call of B pairs "
        "in input order (rewardkit too). RSS is the process's peak (VmHWM), interpreter and libraries included. "
        f"PyTorch attention: {args.torch_attn}. ORT-opt: onnxruntime.transformers optimizer (model_type=bert) "
        "on the torch export. Training rows: train_speed.py's runs (BT + AdamW, 16 sequences of exactly L tokens "
        "per step), steps/s and per-step ms after 2 warm-up steps.",
    ]
    imported = []
    for i in impls:
        vals = [r["imported_rss_kib"] for c in args.cases for r in results[c][i] if r.get("imported_rss_kib")]
        if vals:
            imported.append(f"{LABELS[i]} {statistics.median(vals) / 1024:.0f}")
    if imported:
        out.append("RSS after imports, before the model is loaded (MiB): " + ", ".join(imported) + ".")
    key_ops = ("Attention", "SkipLayerNormalization", "BiasGelu", "Gelu", "Erf", "FusedMatMul", "MatMul")
    graphs = []
    for name, ops in prep.get("session_ops", {}).items():
        kept = ", ".join(f"{op} {ops[op]}" for op in key_ops if ops.get(op))
        graphs.append(f"{LABELS[name]} {sum(ops.values())} nodes ({kept})")
    if graphs:
        out.append("Graphs as ONNX Runtime runs them (after its session optimisations): " + "; ".join(graphs) + ".")
    rounds = per_round(args, results, train)
    out += per_round_lines(rounds)
    out += targets(results)
    loads = [r["load_average_1min"] for c in args.cases for i in impls for r in results[c][i] if "load_average_1min" in r]
    if loads and statistics.median(loads) > (os.cpu_count() or 1):
        out.append(f"WARNING: the 1-minute load average was {statistics.median(loads):.1f} (median over runs) on "
                   f"{os.cpu_count()} cores: other processes competed with every side. Small calls suffer most, "
                   "PyTorch's most of all (its OpenMP threads busy-wait at every barrier; see --omp-wait-policy).")
    if disagree:
        out.append(f"WARNING: scores differ from PyTorch's by more than {PARITY_TOL} in {sorted(disagree)}")
    print("\n".join(out))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "config": {k: v for k, v in vars(args).items() if not k.startswith("worker") and k not in ("case", "warm_chunk")},
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                             "onnxruntime": onnxruntime.__version__, "python": platform.python_version()},
                "load_average": {"before": load_before, "after": load_after},
                "wall_seconds": time.time() - started,
                "prepare": prep, "parity": parity, "tokens": toks, "agreement_vs_pytorch": agreement,
                "summary": {c: {i: summarize(results[c][i]) for i in impls} for c in args.cases},
                "train_summary": {str(l): {i: summarize_train(v) for i, v in train[l].items()} for l in args.train_lengths},
                "per_round": {name: {"ratio": what, "values": v} for name, (what, v) in rounds.items()},
                "runs": results, "train_runs": {str(l): v for l, v in train.items()},
            }, f, indent=1)
    if disagree:
        sys.exit(3)


if __name__ == "__main__":
    main()
