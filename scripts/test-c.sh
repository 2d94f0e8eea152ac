#!/usr/bin/env bash
# The C ABI tests: build the library, make test bundles (good and broken) in a
# temporary directory, compile tests/c/test_rewardkit.c against
# include/rewardkit.h and librewardkit.so, run it plainly and under valgrind,
# and compile and run the C example. Run through `make test-c`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== build"
cargo build --release
RK=target/release/rewardkit

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== test bundles in $WORK"
"$RK" dev tiny-backbone "$WORK/tiny"
"$RK" init --backbone "$WORK/tiny" --out "$WORK/bundle" --seed 3
"$RK" init --backbone "$WORK/tiny" --out "$WORK/bundle5" --seed 3 --outputs helpsteer2

# Each broken bundle is a copy of bundle/ with one thing wrong.
broken() {
    cp -r "$WORK/bundle" "$WORK/broken-$1"
    echo "$WORK/broken-$1"
}
# Rewrite a bundle's rewardkit.json with a Python expression on `m`.
edit_manifest() {
    python3 - "$1/rewardkit.json" "$2" <<'EOF'
import json, sys
path, edit = sys.argv[1], sys.argv[2]
with open(path) as f:
    m = json.load(f)
exec(edit)
with open(path, "w") as f:
    json.dump(m, f, indent=2)
EOF
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

CFLAGS=(-std=c11 -Wall -Wextra -Werror -pthread -Iinclude)
LDFLAGS=(-Ltarget/release -lrewardkit "-Wl,-rpath,$PWD/target/release" -lm)
mkdir -p tests/c/build

echo "== compile tests/c/test_rewardkit.c"
cc "${CFLAGS[@]}" tests/c/test_rewardkit.c "${LDFLAGS[@]}" -o tests/c/build/test_rewardkit

echo "== run"
tests/c/build/test_rewardkit "$WORK"

echo "== run under valgrind"
# tests/c/valgrind.supp only matches frames inside libonnxruntime.
start=$SECONDS
RK_TEST_QUICK=1 valgrind --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite --suppressions=tests/c/valgrind.supp \
    tests/c/build/test_rewardkit "$WORK"
echo "valgrind run took $((SECONDS - start)) s"

echo "== compile tests/c/test_trainer.c"
cat > "$WORK/pairs.jsonl" <<'JSONL'
{"prompt": "explain water please", "chosen": "water is good and helpful.", "rejected": "no. wrong.", "strength": 2}
{"prompt": "explain fire please", "chosen": "fire is hot, here is a correct answer.", "rejected": "i will not help.", "strength": 1}
{"prompt": "explain the moon", "chosen": "the moon is not a star, it is a moon.", "rejected": "bad question.", "strength": 3}
{"prompt": "what is a cat?", "chosen": "a cat is an animal, sure.", "rejected": "no.", "strength": 1}
JSONL
cc "${CFLAGS[@]}" tests/c/test_trainer.c "${LDFLAGS[@]}" -o tests/c/build/test_trainer
echo "== run the trainer tests"
tests/c/build/test_trainer "$WORK"
echo "== run the trainer tests under valgrind"
start=$SECONDS
valgrind --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite --suppressions=tests/c/valgrind.supp \
    tests/c/build/test_trainer "$WORK"
echo "valgrind run took $((SECONDS - start)) s"

echo "== example examples/c/score_pairs.c"
cc "${CFLAGS[@]}" examples/c/score_pairs.c "${LDFLAGS[@]}" -o tests/c/build/score_pairs
tests/c/build/score_pairs "$WORK/bundle"
