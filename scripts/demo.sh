#!/usr/bin/env bash
# The demo: make a reward-model bundle from the pretrained MiniLM backbone,
# then score pairs with it from the command line and from a C program.
# Run through `make demo` (which runs setup first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

work=.rewardkit/demo
bundle=$work/minilm-reward
mkdir -p "$work"

echo "== Building rewardkit (release)"
cargo build --release --quiet
rk=target/release/rewardkit

echo
echo "== rewardkit init: a reward-model bundle from all-MiniLM-L6-v2"
$rk init --backbone .rewardkit/models/all-MiniLM-L6-v2 --out "$bundle" --seed 0 --force
ls -l "$bundle"

echo
echo "== rewardkit score: one pair"
$rk score --model "$bundle" \
    --prompt "How do I boil an egg?" \
    --response "Place the egg in boiling water for about nine minutes, then cool it in cold water."

echo
echo "== rewardkit score: a JSONL file of chosen/rejected pairs"
cat > "$work/pairs.jsonl" <<'JSONL'
{"prompt": "What is the capital of France?", "chosen": "The capital of France is Paris.", "rejected": "France is a country in Europe."}
{"prompt": "User: Can you help me write a haiku about autumn?\n\nAssistant: Sure! Do you want it to rhyme?\n\nUser: No, a classic one.", "chosen": "Crimson leaves drifting / the old maple lets them go / cold wind keeps the count", "rejected": "Autumn is a season."}
{"prompt": "How many legs does a spider have?", "chosen": "A spider has eight legs.", "rejected": "Spiders have six legs, like all insects."}
JSONL
$rk score --model "$bundle" --input "$work/pairs.jsonl"

echo
echo "== The same bundle from C (examples/c/score_pairs.c through include/rewardkit.h)"
mkdir -p "$work/c"
cc -std=c11 -O2 -Wall -Wextra -Iinclude examples/c/score_pairs.c \
    -Ltarget/release -lrewardkit -Wl,-rpath,"$PWD/target/release" -lm -o "$work/c/score_pairs"
"$work/c/score_pairs" "$bundle"

echo
echo "The head of this bundle is freshly initialised (seed 0), so its rewards are"
echo "not yet meaningful: this demo shows the path from a pretrained backbone to"
echo "in-process scoring from the CLI and from C."
