#!/usr/bin/env bash
# The C ABI tests under memory checkers: tests/c/test_hostile.c (hostile
# input to every public function), tests/c/test_rewardkit.c and
# tests/c/test_trainer.c, compiled with AddressSanitizer and UndefinedBehavior-
# Sanitizer (gcc, nothing to install), then test_hostile again, compiled
# plainly, under valgrind.
#
# librewardkit itself is not instrumented (it is Rust, built normally): ASan
# checks the C side, and through its interceptors (malloc, free, memcpy,
# strlen...) every call the library makes into libc, with leak detection at
# exit. valgrind checks everything, the library included, without
# recompiling it.
#
# It does not build Rust. Environment:
#   RK_LIB_DIR  directory holding librewardkit.so (default target/release)
#   RK_BIN      the rewardkit CLI, used to make test bundles
#               (default $RK_LIB_DIR/rewardkit)
# ONNX Runtime is found as usual (REWARDKIT_ORT_LIB, .rewardkit/ort/ above the
# repository root, or beside librewardkit.so). Works from any directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RK_LIB_DIR="${RK_LIB_DIR:-$ROOT/target/release}"
if [[ ! -f "$RK_LIB_DIR/librewardkit.so" ]]; then
    echo "no librewardkit.so in $RK_LIB_DIR: build it (cargo build --release) or set RK_LIB_DIR" >&2
    exit 1
fi
RK_LIB_DIR="$(cd "$RK_LIB_DIR" && pwd)"
RK_BIN="${RK_BIN:-$RK_LIB_DIR/rewardkit}"
if [[ ! -x "$RK_BIN" ]]; then
    echo "no rewardkit CLI at $RK_BIN: set RK_BIN" >&2
    exit 1
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
BIN="$WORK/bin"
mkdir -p "$BIN"

echo "== test fixtures in $WORK"
bash scripts/make-c-fixtures.sh "$WORK" "$RK_BIN"

CFLAGS=(-std=c11 -Wall -Wextra -Werror -pthread -Iinclude -g -O1)
SANITIZE=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
LDFLAGS=(-L"$RK_LIB_DIR" -lrewardkit "-Wl,-rpath,$RK_LIB_DIR" -lm)

echo "== compile with -fsanitize=address,undefined"
for t in test_hostile test_rewardkit test_trainer; do
    cc "${CFLAGS[@]}" "${SANITIZE[@]}" "tests/c/$t.c" "${LDFLAGS[@]}" -o "$BIN/$t-asan"
done
echo "== compile test_hostile for valgrind"
cc "${CFLAGS[@]}" tests/c/test_hostile.c "${LDFLAGS[@]}" -o "$BIN/test_hostile"

# halt_on_error: the first report fails the run. Leaks are detected at exit,
# with no suppressions: neither librewardkit nor ONNX Runtime leaks here.
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export ASAN_OPTIONS
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# Every run goes ahead even when one before it failed; the script fails at
# the end if any did.
failed=()
run() {
    local name=$1
    shift
    echo "== $name"
    local start=$SECONDS
    if "$@"; then
        echo "$name: ok ($((SECONDS - start)) s)"
    else
        echo "$name: FAILED ($((SECONDS - start)) s)"
        failed+=("$name")
    fi
}

for t in test_hostile test_rewardkit test_trainer; do
    run "$t under AddressSanitizer" "$BIN/$t-asan" "$WORK"
done

# tests/c/valgrind.supp only matches frames inside libonnxruntime and ld.so.
# RK_TEST_QUICK=1: shorter long strings, fewer scorers and thread repetitions.
run "test_hostile under valgrind" env RK_TEST_QUICK=1 valgrind --error-exitcode=1 \
    --leak-check=full --errors-for-leak-kinds=definite \
    --suppressions=tests/c/valgrind.supp "$BIN/test_hostile" "$WORK"

if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "== all C ABI tests passed under AddressSanitizer and valgrind"
