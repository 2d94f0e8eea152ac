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

echo "== test fixtures in $WORK"
bash scripts/make-c-fixtures.sh "$WORK" "$RK"

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
