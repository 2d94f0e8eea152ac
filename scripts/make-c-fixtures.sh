#!/usr/bin/env bash
# The fixtures of the C tests (tests/c/*.c), made in WORK with the rewardkit
# CLI RK: a tiny backbone, bundle/ and bundle5/ (five outputs), bundle5w/
# (bundle5 with reward weights), broken-*/ (copies of bundle/ with one thing
# wrong each), and pairs.jsonl. Used by scripts/test-c.sh and
# scripts/test-asan.sh.
#   bash scripts/make-c-fixtures.sh WORK RK
set -euo pipefail
WORK=$1
RK=$2

"$RK" dev tiny-backbone "$WORK/tiny" >/dev/null
"$RK" init --backbone "$WORK/tiny" --out "$WORK/bundle" --seed 3 >/dev/null
"$RK" init --backbone "$WORK/tiny" --out "$WORK/bundle5" --seed 3 --outputs helpsteer2 >/dev/null

broken() {
    cp -r "$WORK/bundle" "$WORK/broken-$1"
    echo "$WORK/broken-$1"
}
# Rewrite a bundle's rewardkit.json with a Python expression on `m`.
edit_manifest() {
    python3 - "$1/rewardkit.json" "$2" <<'PY'
import json, sys
path, edit = sys.argv[1], sys.argv[2]
with open(path) as f:
    m = json.load(f)
exec(edit)
with open(path, "w") as f:
    json.dump(m, f, indent=2)
PY
}
cp -r "$WORK/bundle5" "$WORK/bundle5w"
edit_manifest "$WORK/bundle5w" 'm["reward_weights"] = [0.5, 1.0, 0.0, 0.0, -0.25]'
rm "$(broken no-model)/model.onnx"
b=$(broken truncated-model)
head -c $(( $(stat -c %s "$b/model.onnx") / 2 )) "$WORK/bundle/model.onnx" > "$b/model.onnx"
printf '{"format": "rewardkit-bundle", ' > "$(broken bad-json)/rewardkit.json"
edit_manifest "$(broken output-mismatch)" 'm["outputs"] = ["reward", "extra"]'
rm "$(broken no-tokenizer)/tokenizer.json"
edit_manifest "$(broken newer-version)" 'm["format_version"] = 99'

cat > "$WORK/pairs.jsonl" <<'JSONL'
{"prompt": "explain water please", "chosen": "water is good and helpful.", "rejected": "no. wrong.", "strength": 2}
{"prompt": "explain fire please", "chosen": "fire is hot, here is a correct answer.", "rejected": "i will not help.", "strength": 1}
{"prompt": "explain the moon", "chosen": "the moon is not a star, it is a moon.", "rejected": "bad question.", "strength": 3}
{"prompt": "what is a cat?", "chosen": "a cat is an animal, sure.", "rejected": "no.", "strength": 1}
JSONL
