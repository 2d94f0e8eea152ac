#!/usr/bin/env bash
# The bindings' test suites (Go, Java, Python; each first checks that its
# generated layer matches include/rewardkit.h) and the install test
# (pkg-config, shared and static). Needs the release build and, for Python,
# the venv of scripts/test-python.sh. Run through `make test-bindings`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release
export RK_LIB_DIR="$PWD/target/release"
if [ -z "${PYTHON:-}" ] && [ -x .rewardkit/venv/bin/python ]; then
    export PYTHON="$PWD/.rewardkit/venv/bin/python"
fi
echo "== generated layers match the header"
bash scripts/gen-bindings.sh --check
echo "== Go binding"
bash bindings/go/test.sh
echo "== Java binding"
bash bindings/java/test.sh
echo "== Python binding"
bash bindings/python/test.sh
echo "== install with pkg-config"
bash scripts/test-install.sh
