#!/usr/bin/env python3
"""Decoder reward models: scoring throughput and import memory, rewardkit next to transformers.

The models are random LlamaForSequenceClassification checkpoints made at run
time with transformers (torch seed 0, one label, pad_token_id set, fp32,
save_pretrained's safetensors) in --workdir, never committed:
  tiny    hidden 64, 2 layers, 4 heads, 2 kv heads, intermediate 128
  100m    hidden 768, 12 layers, 12 heads, 4 kv heads, intermediate 2048
Both use the all-MiniLM-L6-v2 tokenizer.json (`make setup`) as theirs, with
no tokenizer_config.json, so rewardkit renders pairs as plain text
(`User: {prompt}\\n\\nAssistant: {response}`, the tokenizer's own special
tokens: [CLS] … [SEP]); vocab_size is the tokenizer's, max_position_embeddings
512.

Steps, in one run:
  1. import  each checkpoint with the release CLI (`rewardkit import --hf DIR
             --out BUNDLE --max-length L`) under /usr/bin/time -v: wall time
             and peak RSS next to the safetensors' size (the target: peak at
             most about 1.3x the weights); one more import polled through
             /proc/PID/status splits the peak into anonymous and file-backed
             (memory-mapped checkpoint) pages; `rewardkit --version`'s RSS is
             the CLI's floor.
  2. parity  a fresh process scores 8 dev.jsonl pairs (short, middle, long
             and truncated at L; plain and multi-turn prompts) one by one and
             all in one batch on both sides, and checks the token ids against
             `rewardkit render --tokens`. It refuses to go on if any score
             differs from transformers' by more than 1e-3 or any token differs.
  3. speed   one fresh process per (model, side, batch size): load, a
             warm-up call on the longest padded chunk, then --reps timed
             passes over --pairs dev.jsonl pairs; sides alternate, the first
             side rotating each round. The table has median pairs/s, the
             ratio rewardkit/transformers, RSS after load and peak RSS.

Sides, fp32 on the CPU with --threads intra-op threads each:
  transformers  LlamaForSequenceClassification under torch.inference_mode()
                (torch.set_num_threads), logits of the last non-pad token
  rewardkit     rewardkit.Scorer (bindings/python, ctypes over the C ABI) on
                the imported bundle (pooling at the last real token by the
                attention mask)

Every call goes from strings to scores. transformers renders the pair as
rewardkit does (src/text/tokenizer.rs plain_text, with chat.rs's reading of
`User:`/`Assistant:` turns in the prompt), tokenizes with the `tokenizers`
library on the same tokenizer.json (add_special_tokens=True), truncates as
encode_rendered does (keep [CLS] and [SEP], then truncation_split: the end of
the prompt, the start of the response) and right-pads each chunk of B pairs
in input order to its longest. rewardkit gets the whole workload in one
score_batch call with max_batch = B and sorts it by length before chunking
(its feature, as in score_compare.py); the table shows both sides' padded
tokens per pair.

Usage (PyTorch and transformers are needed only for this script):
    CARGO_TARGET_DIR=/tmp/tgt-bench nice cargo build --release
    CARGO_TARGET_DIR=/tmp/tgt-bench nice /tmp/cmpenv/bin/python benches/compare/decoder_compare.py
See --help and benches/README.md for the options.
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from score_compare import (  # noqa: E402  (beside this file: inputs, encoder, RSS, formatting)
    BACKBONE,
    BINDINGS,
    ROOT,
    PairEncoder,
    chunks,
    dev_pairs,
    fmt,
    peak_rss_kib,
    rss_kib,
    token_stats,
)

TOKENIZER = os.path.join(BACKBONE, "tokenizer.json")
SIDES = ["transformers", "rewardkit"]
PARITY_TOL = 1e-3
MAX_POSITIONS = 512
SIZES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128),
    "100m": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                 intermediate_size=2048),
}
# rewardkit's reading of a prompt's turns (src/text/chat.rs: LABELS, HS2_MARKER).
LABELS = (("User:", "User"), ("Assistant:", "Assistant"), ("System:", "System"))
HS2_MARKER = "<extra_id_1>"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- text, as rewardkit renders it


def prompt_turns(prompt):
    """chat.rs messages_from_prompt for prompts without HelpSteer2 markers: [(role label, content)]."""
    if HS2_MARKER in prompt:
        raise NotImplementedError(f"HelpSteer2-style prompts ({HS2_MARKER}) are not ported to this harness")
    turns = []
    for block in prompt.split("\n\n"):
        for label, role in LABELS:
            rest = block[len(label):] if block.startswith(label) else None
            if rest is not None and (rest == "" or rest.startswith(" ")):
                turns.append([role, rest[1:]])
                break
        else:
            if not turns:
                return [("User", prompt)]
            turns[-1][1] += "\n\n" + block
    return [tuple(t) for t in turns]


def plain_text(prompt, response):
    """tokenizer.rs plain_text: (text, response_start, response_end), in characters."""
    text = "".join(f"{role}: {content}\n\n" for role, content in prompt_turns(prompt)) + "Assistant: "
    return text + response, len(text), len(text) + len(response)


class PlainEncoder(PairEncoder):
    """rewardkit's TextMode::Plain encoding (tokenizer.rs encode_rendered) with `tokenizers`.

    Reuses score_compare.PairEncoder's loading (padding and truncation in
    tokenizer.json cleared), truncation_split and right-padded batches.
    """

    def encode(self, prompts, responses):
        rendered = [plain_text(p, r) for p, r in zip(prompts, responses)]
        encs = self.tok.encode_batch([t for t, _, _ in rendered], add_special_tokens=True)
        return [(ids, [0] * len(ids)) for ids in (self.cut(e, a, b) for e, (_, a, b) in zip(encs, rendered))]

    def cut(self, enc, response_start, response_end):
        ids, offsets, special = enc.ids, enc.offsets, enc.special_tokens_mask
        n = len(ids)
        if n <= self.max_length:
            return ids
        first_text = next((i for i in range(n) if not special[i]), n)

        def part(i):  # 0 prompt, 1 response, 2 suffix; special tokens join their neighbours
            if special[i]:
                return 0 if i < first_text else 2
            start = offsets[i][0]
            return 0 if start < response_start else 1 if start < response_end else 2

        a = next((i for i in range(n) if part(i) >= 1), n)
        b = next((i for i in range(a, n) if part(i) >= 2), n)
        suffix = n - b
        if suffix + 1 >= self.max_length:
            return ids[n - self.max_length:]
        head, prompt = (1, a - 1) if a > 0 else (0, 0)
        kp, kr = self.split(prompt, b - a, self.max_length - suffix - head)
        return ids[:head] + ids[a - kp:a] + ids[a:a + kr] + ids[b:]


# ---------------------------------------------------------------- paths and sides


def work_paths(workdir, model):
    return {
        "hf": os.path.join(workdir, f"hf-{model}"),
        "bundle": os.path.join(workdir, f"bundle-{model}"),
        "lib": os.path.join(workdir, "lib", "librewardkit.so"),
    }


class TransformersSide:
    def __init__(self, paths, threads, batch, max_length, attn):
        import torch
        import transformers

        self.imported_rss_kib = rss_kib()
        torch.set_num_threads(threads)
        self.torch = torch
        self.enc = PlainEncoder(TOKENIZER, max_length)
        self.model = transformers.LlamaForSequenceClassification.from_pretrained(
            paths["hf"], dtype=torch.float32, attn_implementation=attn).eval()

    def call(self, prompts, responses):
        torch = self.torch
        ids, mask, _ = self.enc.batch(prompts, responses)
        with torch.inference_mode():
            logits = self.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
        return logits[:, 0].numpy()


class RewardkitSide:
    def __init__(self, paths, threads, batch, max_length):
        os.environ["REWARDKIT_LIB"] = paths["lib"]  # ONNX Runtime: .rewardkit/ort/ under the cwd, ROOT
        sys.path.insert(0, BINDINGS)
        import rewardkit

        rewardkit.version()  # loads librewardkit (and with it ONNX Runtime)
        self.imported_rss_kib = rss_kib()
        self.scorer = rewardkit.Scorer(paths["bundle"], threads=threads, max_batch=batch, max_length=max_length)

    def call(self, prompts, responses):
        return self.scorer.score_batch(prompts, responses, as_numpy=True)


def make_side(side, paths, args, batch):
    if side == "transformers":
        return TransformersSide(paths, args.threads, batch, args.max_length, args.torch_attn)
    return RewardkitSide(paths, args.threads, batch, args.max_length)


# ---------------------------------------------------------------- workers (fresh processes)


def worker_create(args):
    """A random LlamaForSequenceClassification checkpoint; prints one JSON line."""
    import torch
    import transformers
    from tokenizers import Tokenizer

    paths = work_paths(args.workdir, args.model)
    tok = Tokenizer.from_file(TOKENIZER)
    special = {k: tok.token_to_id(t) for k, t in (("pad", "[PAD]"), ("bos", "[CLS]"), ("eos", "[SEP]"))}
    cfg = transformers.LlamaConfig(
        vocab_size=tok.get_vocab_size(), max_position_embeddings=MAX_POSITIONS, num_labels=1,
        pad_token_id=special["pad"], bos_token_id=special["bos"], eos_token_id=special["eos"],
        **SIZES[args.model])
    torch.manual_seed(0)
    t = time.perf_counter()
    model = transformers.LlamaForSequenceClassification(cfg).to(torch.float32).eval()
    shutil.rmtree(paths["hf"], ignore_errors=True)
    model.save_pretrained(paths["hf"], safe_serialization=True)
    shutil.copy2(TOKENIZER, os.path.join(paths["hf"], "tokenizer.json"))
    weights = [f for f in os.listdir(paths["hf"]) if f.endswith(".safetensors")]
    print(json.dumps({
        "model": args.model, "config": SIZES[args.model], "vocab_size": cfg.vocab_size,
        "params": sum(p.numel() for p in model.parameters()),
        "safetensors_bytes": sum(os.path.getsize(os.path.join(paths["hf"], f)) for f in weights),
        "seconds": time.perf_counter() - t,
    }))


def parity_pairs(n):
    """n of the first 200 dev.jsonl pairs, evenly spread from the shortest to the longest (truncated at L),
    with plain and multi-turn prompts among them; and their untruncated token counts."""
    real = dev_pairs()[:200]
    lens = PlainEncoder(TOKENIZER, 1 << 20).lengths(real)
    order = sorted(range(len(real)), key=lambda i: lens[i])
    idx = list(dict.fromkeys(order[round(j * (len(order) - 1) / max(n - 1, 1))] for j in range(n)))
    for multi in (False, True):  # a prompt read as one user turn, and one with several labelled turns
        if not any((len(prompt_turns(real[i][0])) > 1) == multi for i in idx):
            idx[len(idx) // 2 - multi] = next(i for i in order if (len(prompt_turns(real[i][0])) > 1) == multi)
    return [real[i] for i in idx], [lens[i] for i in idx]


def worker_parity(args):
    """Score a few pairs on both sides, one by one and batched; check tokens; prints one JSON line."""
    paths = work_paths(args.workdir, args.model)
    enc = PlainEncoder(TOKENIZER, args.max_length)
    pairs, full_lens = parity_pairs(args.parity_pairs)
    prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
    ours = [ids for ids, _ in enc.encode(prompts, responses)]
    token_mismatch = []
    for i, (p, r) in enumerate(pairs):
        out = subprocess.run([args.cli, "render", "--model", paths["bundle"], "--prompt", p, "--response", r,
                              "--tokens"], capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            print(json.dumps({"error": f"rewardkit render failed on pair {i}: {out.stderr.strip()[-1000:]}"}))
            return
        theirs = [int(x) for x in out.stdout.strip().splitlines()[-1].split()]
        if theirs != ours[i]:
            token_mismatch.append({"pair": i, "prompt": p[:200], "response": r[:200],
                                   "harness": ours[i], "rewardkit": theirs})
    got = {}
    for side in SIDES:
        s = make_side(side, paths, args, len(pairs))
        got[side] = {"one": [float(s.call([p], [r])[0]) for p, r in pairs],
                     "batch": [float(x) for x in s.call(prompts, responses)]}
        del s
    ref = got["transformers"]["one"]
    diffs = {f"{side}/{how}": max(abs(a - b) for a, b in zip(got[side][how], ref))
             for side in SIDES for how in ("one", "batch")}
    worst = max(diffs.values())
    print(json.dumps({
        "model": args.model, "tolerance": PARITY_TOL, "tokens": [len(t) for t in ours],
        "tokens_untruncated": full_lens, "turns": [len(prompt_turns(p)) for p in prompts],
        "scores": got, "max_abs_diff": diffs, "worst": worst, "max_abs_score": max(abs(x) for x in ref),
        "token_mismatch": token_mismatch, "ok": worst <= PARITY_TOL and not token_mismatch,
    }))


def worker_measure(args):
    """One (model, side, batch) measurement; prints one JSON line."""
    paths = work_paths(args.workdir, args.model)
    pairs = dev_pairs()[:args.pairs]
    prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
    spans = chunks(len(pairs), args.batch)
    t0 = time.perf_counter()
    side = make_side(args.side, paths, args, args.batch)
    load_s = time.perf_counter() - t0
    loaded_rss = rss_kib()

    # Warm-up on the chunk with the longest padded shape, not timed.
    a, b = spans[args.warm_chunk]
    side.call(prompts[a:b], responses[a:b])

    pass_s, scores = [], None
    for _ in range(args.reps):
        t = time.perf_counter()
        if args.side == "rewardkit":
            scores = side.call(prompts, responses)  # the whole workload: sorted, chunks of max_batch
        else:
            scores = [x for a, b in spans for x in side.call(prompts[a:b], responses[a:b])]
        pass_s.append(time.perf_counter() - t)
    print(json.dumps({
        "model": args.model, "side": args.side, "batch": args.batch, "pairs": len(pairs),
        "load_seconds": load_s, "pass_seconds": pass_s, "scores": [float(x) for x in scores],
        "imported_rss_kib": side.imported_rss_kib, "loaded_rss_kib": loaded_rss,
        "peak_rss_kib": peak_rss_kib(), "load_average_1min": os.getloadavg()[0],
    }))


# ---------------------------------------------------------------- the driver


def spawn(args, role, **extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", role, "--workdir", args.workdir,
           "--threads", str(args.threads), "--pairs", str(args.pairs), "--reps", str(args.reps),
           "--max-length", str(args.max_length), "--parity-pairs", str(args.parity_pairs),
           "--torch-attn", args.torch_attn, "--cli", args.cli]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    # Tokenization stays on the calling thread on both sides (rewardkit's does).
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if args.omp_wait_policy == "passive" and extra.get("side") == "transformers":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": f"{role} {extra} exited {out.returncode}: {out.stderr.strip()[-2000:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_v(cmd):
    """Run cmd under /usr/bin/time -v: (wall seconds, peak RSS KiB, completed process)."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", out.stderr)
    if not rss or not wall:
        sys.exit(f"cannot read /usr/bin/time -v's report:\n{out.stderr[-2000:]}")
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    return seconds, int(rss.group(1)), out


def sampled_peaks(cmd, interval=0.005):
    """Run cmd, polling /proc/PID/status: peak VmRSS and, at that moment, its anonymous and file-backed parts (KiB).

    File-backed resident pages (the memory-mapped checkpoint) are counted in
    RSS but are clean page cache the kernel can drop and re-read; anonymous
    pages (heap copies of tensors) are not. Polling can miss a short spike:
    /usr/bin/time's figure stays the reference.
    """
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    best = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    max_anon = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                now = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f) if k in best}
        except (OSError, ValueError):
            now = {}
        if now.get("VmRSS", 0) > best["VmRSS"]:
            best = {k: now.get(k, 0) for k in best}
        max_anon = max(max_anon, now.get("RssAnon", 0))
        time.sleep(interval)
    if proc.wait() != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.read()[-3000:]}")
    return {"peak_rss_kib": best["VmRSS"], "anon_at_peak_kib": best["RssAnon"], "file_at_peak_kib": best["RssFile"],
            "max_anon_kib": max_anon}


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def import_model(args, model):
    paths = work_paths(args.workdir, model)
    cmd = [args.cli, "import", "--hf", paths["hf"], "--out", paths["bundle"], "--max-length",
           str(args.max_length), "--force"]
    runs = [time_v(cmd)[:2] for _ in range(args.import_rounds)]
    return {"wall_seconds": [w for w, _ in runs], "peak_rss_kib": [r for _, r in runs],
            "sampled": sampled_peaks(cmd), "bundle_bytes": dir_bytes(paths["bundle"])}


def mib(kib_or_bytes, unit="kib"):
    return kib_or_bytes / (1024 if unit == "kib" else 1024 * 1024)


def import_table(created, imports, floor_kib):
    lines = ["| model | parameters | safetensors MiB | import wall s | import peak RSS MiB | peak / safetensors "
             "| at the peak: anon · file-backed MiB (sampled) | max anon / safetensors | bundle MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model, c in created.items():
        imp = imports[model]
        peak = max(imp["peak_rss_kib"])
        weights = c["safetensors_bytes"]
        lines.append(f"| {model} | {c['params']:,} | {mib(weights, 'b'):.1f} | "
                     f"{statistics.median(imp['wall_seconds']):.2f} | {mib(peak):.1f} | "
                     f"{peak * 1024 / weights:.2f}× | {mib(imp['sampled']['anon_at_peak_kib']):.1f} · "
                     f"{mib(imp['sampled']['file_at_peak_kib']):.1f} | "
                     f"{imp['sampled']['max_anon_kib'] * 1024 / weights:.2f}× | {mib(imp['bundle_bytes'], 'b'):.1f} |")
    lines.append(f"| (`rewardkit --version`) | — | — | — | {mib(floor_kib):.1f} | — | — | — | — |")
    return "\n".join(lines)


def summarize(runs):
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None
    med = lambda key: statistics.median(r[key] for r in ok)  # noqa: E731
    return {
        "pairs_per_s": statistics.median(r["pairs"] / s for r in ok for s in r["pass_seconds"]),
        "passes": sum(len(r["pass_seconds"]) for r in ok),
        "load_s": med("load_seconds"),
        "imported_rss_mib": mib(med("imported_rss_kib")),
        "loaded_rss_mib": mib(med("loaded_rss_kib")),
        "peak_rss_mib": mib(med("peak_rss_kib")),
    }


def speed_table(results, toks):
    lines = ["| model | B | transformers pairs/s | rewardkit pairs/s | rk/TF | RSS after load MiB TF · rk "
             "| (libraries only) TF · rk | peak RSS MiB TF · rk | load s TF · rk "
             "| tokens/pair real · padded TF · rk |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (model, batch), by_side in results.items():
        s = {side: summarize(runs) for side, runs in by_side.items()}
        tf, rk = s["transformers"], s["rewardkit"]

        def both(key, spec):
            return " · ".join(fmt(x[key] if x else None, spec) for x in (tf, rk))

        ratio = fmt(rk["pairs_per_s"] / tf["pairs_per_s"], ".2f") + "×" if tf and rk else "—"
        t = toks[(model, batch)]
        lines.append(f"| {model} | {batch} | {fmt(tf and tf['pairs_per_s'], '.2f')} | "
                     f"{fmt(rk and rk['pairs_per_s'], '.2f')} | {ratio} | {both('loaded_rss_mib', '.0f')} | "
                     f"{both('imported_rss_mib', '.0f')} | {both('peak_rss_mib', '.0f')} | {both('load_s', '.1f')} | "
                     f"{t['real']:.0f} · {t['padded_in_order']:.0f} · {t['padded_sorted']:.0f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    ap.add_argument("--models", nargs="+", default=list(SIZES), choices=list(SIZES),
                    help="checkpoints to create, import and check (default: tiny 100m)")
    ap.add_argument("--speed-models", nargs="*", default=None, choices=list(SIZES),
                    help="models in the throughput table (default: --models; none: skip it)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--pairs", type=int, default=64, help="dev.jsonl pairs per timed pass (default 64)")
    ap.add_argument("--reps", type=int, default=3, help="timed passes per process, after the warm-up (default 3)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="fresh processes per (model, side, batch), sides alternating (default 1)")
    ap.add_argument("--max-length", type=int, default=256, help="token limit on both sides and the import's (default 256)")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads on each side (default 2)")
    ap.add_argument("--parity-pairs", type=int, default=8)
    ap.add_argument("--import-rounds", type=int, default=2,
                    help="imports per model; the table has the median wall time and the largest peak (default 2)")
    ap.add_argument("--torch-attn", default="sdpa", choices=["sdpa", "eager"],
                    help="transformers attention (default sdpa, transformers' own default)")
    ap.add_argument("--omp-wait-policy", choices=["default", "passive"], default="default",
                    help="passive: OMP_WAIT_POLICY=PASSIVE for the transformers processes")
    ap.add_argument("--lib", default=os.path.join(target, "release", "librewardkit.so"),
                    help="librewardkit.so (default: $CARGO_TARGET_DIR or target/, then release/)")
    ap.add_argument("--cli", default=os.path.join(target, "release", "rewardkit"))
    ap.add_argument("--build", action="store_true",
                    help="nice cargo build --release first (into $CARGO_TARGET_DIR when set)")
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "rewardkit-decoder-compare"))
    ap.add_argument("--json", help="write every raw measurement here")
    ap.add_argument("--worker", choices=["create", "parity", "measure"], help=argparse.SUPPRESS)
    ap.add_argument("--model", choices=list(SIZES), help=argparse.SUPPRESS)
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--warm-chunk", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.cli, args.lib = os.path.abspath(args.cli), os.path.abspath(args.lib)

    if args.worker:
        return {"create": worker_create, "parity": worker_parity, "measure": worker_measure}[args.worker](args)

    speed_models = args.models if args.speed_models is None else args.speed_models
    if not set(speed_models) <= set(args.models):
        ap.error("--speed-models must be among --models")
    if not 8 <= args.max_length <= MAX_POSITIONS:
        ap.error(f"--max-length must be within 8..{MAX_POSITIONS} (the checkpoints' max_position_embeddings)")
    if not os.path.exists(TOKENIZER):
        sys.exit(f"{TOKENIZER} not found: run `make setup` first")
    if not os.path.exists("/usr/bin/time"):
        sys.exit("/usr/bin/time not found: apt-get install time")
    if args.build:
        subprocess.run(["nice", "cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    for tool in (args.cli, args.lib):
        if not os.path.exists(tool):
            sys.exit(f"{tool} not found: build it (cargo build --release), pass --lib/--cli, or use --build")
    started, load_before = time.time(), os.getloadavg()
    lib = work_paths(args.workdir, args.models[0])["lib"]
    os.makedirs(os.path.dirname(lib), exist_ok=True)
    shutil.copy2(args.lib, lib)  # a rebuild during the run must not change what is measured

    created, imports = {}, {}
    for model in args.models:
        log(f"creating {model} in {args.workdir} ...")
        c = spawn(args, "create", model=model)
        if "error" in c:
            sys.exit(c["error"])
        created[model] = c
        log(f"  {model}: {c['params']:,} parameters, safetensors {mib(c['safetensors_bytes'], 'b'):.1f} MiB "
            f"({c['seconds']:.1f} s)")
        imports[model] = import_model(args, model)
        log(f"  imported: {', '.join(f'{w:.2f} s' for w in imports[model]['wall_seconds'])}, peak RSS "
            f"{', '.join(f'{mib(r):.1f}' for r in imports[model]['peak_rss_kib'])} MiB; sampled: "
            + ", ".join(f"{k.removesuffix('_kib')} {mib(v):.1f}" for k, v in imports[model]["sampled"].items()) + " MiB")
    floor_kib = time_v([args.cli, "--version"])[1]

    parity = {}
    for model in args.models:
        log(f"parity check, {model} ...")
        p = spawn(args, "parity", model=model)
        if "error" in p:
            sys.exit(p["error"])
        parity[model] = p
        log(f"  tokens {p['tokens']} (untruncated {p['tokens_untruncated']}), prompt turns {p['turns']}; "
            f"max |score| {p['max_abs_score']:.3g}; max |Δ vs transformers one by one| "
            + ", ".join(f"{k} {v:.2e}" for k, v in p["max_abs_diff"].items()))
        for m in p["token_mismatch"]:
            log(f"  token mismatch on pair {m['pair']}: harness {m['harness']} vs rewardkit render {m['rewardkit']}")
    bad = {m: p for m, p in parity.items() if not p["ok"]}
    if bad:
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"created": created, "imports": imports, "parity": parity}, f, indent=1)
        sys.exit("parity check failed: " + "; ".join(
            f"{m}: max |Δ| {p['worst']:.3g} (tolerance {PARITY_TOL}), {len(p['token_mismatch'])} token mismatch(es)"
            for m, p in bad.items()) + "; not reporting timings")

    enc = PlainEncoder(TOKENIZER, args.max_length)
    lens = enc.lengths(dev_pairs()[:args.pairs])
    results, toks, warm = {}, {}, {}
    for model in speed_models:
        for batch in args.batches:
            results[(model, batch)] = {s: [] for s in SIDES}
            toks[(model, batch)] = token_stats(lens, batch)
            spans = chunks(len(lens), batch)
            warm[batch] = max(range(len(spans)), key=lambda k: max(lens[spans[k][0]:spans[k][1]]) * (spans[k][1] - spans[k][0]))
    k = 0
    for rnd in range(args.rounds):
        for model, batch in results:
            order = SIDES[k % 2:] + SIDES[:k % 2]
            k += 1
            for side in order:
                t = time.time()
                r = spawn(args, "measure", model=model, side=side, batch=batch, warm_chunk=warm[batch])
                results[(model, batch)][side].append(r)
                msg = r["error"] if "error" in r else (
                    f"{statistics.median(r['pairs'] / s for s in r['pass_seconds']):.2f} pairs/s, "
                    f"RSS after load {mib(r['loaded_rss_kib']):.0f} MiB")
                log(f"[round {rnd + 1}/{args.rounds}] {model} B={batch} {side}: {msg} ({time.time() - t:.0f} s)")

    # The same inputs must give the same scores on both sides.
    agreement = {}
    for key, by_side in results.items():
        got = [next((r["scores"] for r in by_side[s] if "error" not in r), None) for s in SIDES]
        if all(got):
            agreement[f"{key[0]} B={key[1]}"] = max(abs(a - b) for a, b in zip(*got))
    disagree = {k: v for k, v in agreement.items() if v > PARITY_TOL}

    load_after = os.getloadavg()
    import tokenizers
    import torch
    import transformers

    out = [
        "",
        f"Random LlamaForSequenceClassification checkpoints (torch seed 0), fp32; {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), load average {load_before[0]:.1f} before / "
        f"{load_after[0]:.1f} after; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tokenizers {tokenizers.__version__}.",
        "",
        f"Import (`rewardkit import --hf DIR --out BUNDLE --max-length {args.max_length}` under /usr/bin/time -v, "
        f"{args.import_rounds} run(s) each):",
        "",
        import_table(created, imports, floor_kib),
        "",
        "Parity: max |score − transformers| over " + "; ".join(
            f"{m} {len(p['tokens'])} pairs ({min(p['tokens'])}-{max(p['tokens'])} tokens, |score| ≤ "
            f"{p['max_abs_score']:.3g}): {p['worst']:.1e}" for m, p in parity.items()) + "; token ids identical to "
        "`rewardkit render --tokens`.",
    ]
    if results:
        out += [
            "",
            f"Scoring, CPU, {args.threads} intra-op threads per side, max length {args.max_length}, {args.pairs} "
            f"dev.jsonl pairs per pass; medians over {args.rounds} round(s) × {args.reps} pass(es) after a warm-up "
            f"(fresh process per model, side and batch size; transformers attention {args.torch_attn}):",
            "",
            speed_table(results, toks),
            "",
            "Every pass is strings → scores. transformers pads each chunk of B in input order; rewardkit gets the "
            "whole workload in one score_batch(max_batch = B) call and sorts by length first, hence its smaller "
            "padded tokens/pair at B > 1. RSS after load: the process right after the model is loaded "
            "(interpreter and libraries included; the libraries-only figure is before loading).",
        ]
        loads = [r["load_average_1min"] for v in results.values() for rs in v.values() for r in rs if "load_average_1min" in r]
        if loads and statistics.median(loads) > (os.cpu_count() or 1):
            out.append(f"WARNING: the 1-minute load average was {statistics.median(loads):.1f} (median over runs) on "
                       f"{os.cpu_count()} cores: other processes competed with both sides.")
    if disagree:
        out.append(f"WARNING: timed scores differ between the sides by more than {PARITY_TOL}: {disagree}")
    print("\n".join(out))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "config": {k: v for k, v in vars(args).items() if k not in ("worker", "model", "side", "batch", "warm_chunk")},
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                             "tokenizers": tokenizers.__version__, "python": platform.python_version()},
                "load_average": {"before": load_before, "after": load_after},
                "wall_seconds": time.time() - started,
                "created": created, "imports": imports, "cli_floor_rss_kib": floor_kib, "parity": parity,
                "agreement": agreement,
                "summary": {f"{m} B={b}": {s: summarize(v) for s, v in by.items()} for (m, b), by in results.items()},
                "tokens": {f"{m} B={b}": t for (m, b), t in toks.items()},
                "runs": {f"{m} B={b}": by for (m, b), by in results.items()},
            }, f, indent=1)
    if disagree:
        sys.exit(3)


if __name__ == "__main__":
    main()
