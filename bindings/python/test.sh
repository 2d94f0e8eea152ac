#!/usr/bin/env bash
# Python binding tests: check that rewardkit/_ffi.py matches include/rewardkit.h,
# make test bundles (one-output, five-output, broken) in a temporary
# directory, and run pytest on bindings/python/tests. Builds nothing: it uses
# an already built library and CLI.
#
#   RK_LIB_DIR  directory of librewardkit.so   (default <repo>/target/release)
#   RK_BIN      the rewardkit CLI              (default $RK_LIB_DIR/rewardkit)
#   PYTHON      a Python with pytest (numpy optional)
#               (default <repo>/.rewardkit/venv/bin/python, else python3)
#
# Works from any directory; runs in the repository root, where librewardkit
# finds ONNX Runtime in .rewardkit/ort/ (or set REWARDKIT_ORT_LIB).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

RK_LIB_DIR=${RK_LIB_DIR:-$repo/target/release}
RK_BIN=${RK_BIN:-$RK_LIB_DIR/rewardkit}
if [ -z "${PYTHON:-}" ]; then
    PYTHON=$repo/.rewardkit/venv/bin/python
    [ -x "$PYTHON" ] || PYTHON=python3
fi
for f in "$RK_LIB_DIR/librewardkit.so" "$RK_BIN"; do
    [ -e "$f" ] || { echo "test.sh: $f not found (build first, or set RK_LIB_DIR / RK_BIN)" >&2; exit 1; }
done

echo "== generate.py --check"
"$PYTHON" bindings/python/generate.py --check

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== test bundles in $work"
"$RK_BIN" dev tiny-backbone "$work/tiny" >/dev/null
"$RK_BIN" init --backbone "$work/tiny" --out "$work/bundle" --seed 3 >/dev/null
"$RK_BIN" init --backbone "$work/tiny" --out "$work/bundle5" --seed 3 --outputs helpsteer2 >/dev/null
cp -r "$work/bundle" "$work/broken"
rm "$work/broken/model.onnx"

echo "== pytest ($("$PYTHON" --version 2>&1))"
export REWARDKIT_LIB=$RK_LIB_DIR/librewardkit.so
export RK_TEST_BUNDLE=$work/bundle RK_TEST_BUNDLE5=$work/bundle5 RK_TEST_BROKEN=$work/broken
# pytest exits 5 when it collects no tests: a failure here too.
status=0
"$PYTHON" -m pytest -q -p no:cacheprovider -rs bindings/python/tests || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
