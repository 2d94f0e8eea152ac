#!/usr/bin/env bash
# Issue 4's evidence: train every recipe with the all-MiniLM-L6-v2 backbone
# on the generated set, and BT with and without reward centering on
# ../shared/data (if present), evaluate each on its held-out pairs per subset
# against the longer-response baseline, and print one markdown table.
#
#   bash scripts/recipes-evidence.sh [WORKDIR]     (after `make setup`)
#
# STEPS (default 40) and REAL_STEPS (default 200) size the runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=${1:-.rewardkit/evidence}
steps=${STEPS:-40}
real_steps=${REAL_STEPS:-200}
shared=${SHARED_DATA:-../shared/data}
rm -rf "$work"
mkdir -p "$work"
cargo build --release --quiet
rk=target/release/rewardkit
backbone=.rewardkit/models/all-MiniLM-L6-v2
R=training/recipes

"$rk" data generate --out "$work/gen" --train-pairs 1200 --heldout-pairs 300
# The demo's sizes: short texts, 16 examples per step, a large learning rate.
small=(--max-steps "$steps" --set model.max_length=96 --set training.batch_size=16
       --set optimizer.lr=5e-5 --set schedule.warmup_steps=5 --set training.eval_every=100000
       --set training.checkpoint_every=100000)

run() { # name, then train arguments
    local name=$1; shift
    local t0=$SECONDS
    "$rk" train "$@" --backbone "$backbone" --out "$work/$name" >"$work/$name.log" 2>&1 \
        || { cat "$work/$name.log"; exit 1; }
    echo $((SECONDS - t0)) >"$work/$name.secs"
}
evaluate() { # name, data
    "$rk" eval --model "$work/$1" --data "$2" --baseline length --sections none \
        --report "$work/$1.eval.json" >"$work/$1.eval.txt"
}

g=$work/gen
for r in bt margin_bt scaled_bt; do
    run "$r" --config "$R/$r.toml" --data "$g/train.jsonl" "${small[@]}"
    evaluate "$r" "$g/heldout.jsonl"
done
for r in helpfulness_regression steerlm_regression; do
    run "$r" --config "$R/$r.toml" --data "$g/train_ratings.jsonl" "${small[@]}"
    evaluate "$r" "$g/heldout.jsonl"
    "$rk" eval --model "$work/$r" --data "$g/heldout_ratings.jsonl" --report "$work/$r.reg.json" >/dev/null
done
run regression_then_scaled_bt --config "$R/regression_then_scaled_bt.toml" \
    --ratings "$g/train_ratings.jsonl" --data "$g/train.jsonl" "${small[@]}"
evaluate regression_then_scaled_bt "$g/heldout.jsonl"
# The untrained model (fresh head), for reference.
"$rk" init --backbone "$backbone" --out "$work/untrained" --max-length 96 >/dev/null
evaluate untrained "$g/heldout.jsonl"

if [ -f "$shared/train.jsonl" ]; then
    real=(--data "$shared/train.jsonl" --max-steps "$real_steps" --set model.max_length=128
          --set training.eval_every=100000 --set training.checkpoint_every=100000)
    run real_bt --config "$R/bt.toml" "${real[@]}"
    evaluate real_bt "$shared/dev.jsonl"
    run real_bt_centering --config "$R/bt.toml" "${real[@]}" --set loss.centering=0.01
    evaluate real_bt_centering "$shared/dev.jsonl"
    "$rk" init --backbone "$backbone" --out "$work/real_untrained" --max-length 128 >/dev/null
    evaluate real_untrained "$shared/dev.jsonl"
fi

python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
rows = [("untrained", "generated"), ("bt", "generated"), ("margin_bt", "generated"),
        ("scaled_bt", "generated"), ("helpfulness_regression", "generated"),
        ("steerlm_regression", "generated"), ("regression_then_scaled_bt", "generated"),
        ("real_untrained", "shared dev"), ("real_bt", "shared dev"),
        ("real_bt_centering", "shared dev")]
subsets = {}
for name, _ in rows:
    p = os.path.join(work, name + ".eval.json")
    if os.path.exists(p):
        subsets[name] = json.load(open(p))
print("| model | data | train s | held-out acc | longer baseline | ECE | per subset (acc) |")
print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
for name, data in rows:
    r = subsets.get(name)
    if r is None:
        continue
    secs = os.path.join(work, name + ".secs")
    secs = open(secs).read().strip() if os.path.exists(secs) else "-"
    per = ", ".join(f"{k} {v['accuracy']*100:.1f}" for k, v in r["subsets"].items())
    print(f"| {name} | {data} ({r['pairs']}) | {secs} | {r['accuracy']*100:.1f}% | "
          f"{r['baseline']['accuracy']*100:.1f}% | {r['ece']:.3f} | {per} |")
for name in ("helpfulness_regression", "steerlm_regression"):
    p = os.path.join(work, name + ".reg.json")
    if os.path.exists(p):
        reg = json.load(open(p))["regression"]
        print(f"\n{name} on held-out ratings: " + ", ".join(
            f"{a} MSE {m['mse']:.3f} r {m['pearson'] if m['pearson'] is None else round(m['pearson'], 3)}"
            for a, m in reg.items()))
PY
