#!/usr/bin/env bash
# Python interop tests (tests/python): rewardkit bundles pass the ONNX checker
# and run in stock onnxruntime with the same scores as `rewardkit score`.
# Makes (once) a venv at .rewardkit/venv with the pinned packages below, builds
# the release binary, and runs pytest. Run through `make test-python` (which
# runs `make setup` first: the tests need the all-MiniLM-L6-v2 backbone).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
venv=.rewardkit/venv
pins=(onnx==1.23.2 onnxruntime==1.31.1 numpy pytest)
stamp="$venv/.installed"

if [ ! -x "$venv/bin/python" ]; then
    echo "test-python: creating $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${pins[*]}" ]; then
    echo "test-python: installing ${pins[*]}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
    echo "${pins[*]}" >"$stamp"
fi

cargo build --release

# -q still prints pytest's "N passed in S s" summary line.
# pytest exits 5 when it collects no tests: that is a failure here too.
status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python || status=$?
if [ "$status" -eq 5 ]; then
    echo "test-python: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
