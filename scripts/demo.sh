#!/usr/bin/env bash
# The demo (`make demo`, which runs setup first): generate a preference set,
# train a reward model on it from all-MiniLM-L6-v2 with Scaled BT, report
# held-out accuracy before and after, evaluate per task family against the
# "longer response wins" baseline, and score new pairs from a C program
# through the C ABI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS

work=.rewardkit/demo
rm -rf "$work"
mkdir -p "$work"

echo "== Building rewardkit (release)"
cargo build --release --quiet
rk=target/release/rewardkit

echo
echo "== rewardkit data generate: 5 task families, quality levels 0-4, graded strengths"
"$rk" data generate --out "$work/data" --train-pairs 1200 --heldout-pairs 200
"$rk" data stats --data "$work/data/train.jsonl" \
    --tokenizer .rewardkit/models/all-MiniLM-L6-v2 --max-length 96

echo
echo "== rewardkit train: Scaled BT, 40 steps of 16 pairs (training/recipes/demo.toml)"
"$rk" train --config training/recipes/demo.toml \
    --data "$work/data/train.jsonl" --eval-data "$work/data/heldout.jsonl" \
    --backbone .rewardkit/models/all-MiniLM-L6-v2 --out "$work/model"

echo
echo "== rewardkit eval: held-out pairs (topics never seen in training), per family"
"$rk" eval --model "$work/model" --data "$work/data/heldout.jsonl" \
    --baseline length --report "$work/eval.json"

echo
echo "== Scoring new questions from C (examples/c/score_pairs.c through include/rewardkit.h)"
mkdir -p "$work/c"
cc -std=c11 -O2 -Wall -Wextra -Iinclude examples/c/score_pairs.c \
    -Ltarget/release -lrewardkit -Wl,-rpath,"$PWD/target/release" -lm -o "$work/c/score_pairs"
"$work/c/score_pairs" "$work/model"

echo
echo "The bundle is in $work/model (rewardkit.json, model.onnx, tokenizer.json)."
echo "Demo finished in $((SECONDS - start)) s."
