#!/usr/bin/env bash
# Every test of the project: Rust unit and integration tests (the header
# check included), the C test program under valgrind, and the Python interop
# tests (ONNX checker, stock onnxruntime), the bindings, and a short fuzzing
# pass over every fuzz target (FUZZ_SECONDS each). Run through `make test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== Rust tests"
cargo test --all-targets
echo "== C ABI tests"
bash scripts/test-c.sh
echo "== C ABI hostile input under AddressSanitizer and valgrind"
bash scripts/test-asan.sh
echo "== Python interop tests"
bash scripts/test-python.sh
echo "== Bindings (Go, Java, Python) and install"
bash scripts/test-bindings.sh
echo "== Fuzz smoke: every target under AddressSanitizer (seeds, regressions, then ${FUZZ_SECONDS:-10} s of fuzzing each)"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} bash scripts/test-fuzz.sh
