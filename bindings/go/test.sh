#!/usr/bin/env bash
# The Go binding's checks: the generated layer is up to date, gofmt and go vet
# are clean, the tests pass against test bundles made here, and the example
# program runs. Works from any directory.
#
#   RK_LIB_DIR  directory with librewardkit.so (default: <repo>/target/release)
#   RK_BIN      the rewardkit CLI, used to make the bundles
#               (default: $RK_LIB_DIR/rewardkit)
#
# The library is not built here: run `cargo build --release` first, or point
# RK_LIB_DIR at a built copy.
set -euo pipefail

GO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$GO_DIR/../.." && pwd)
RK_LIB_DIR=${RK_LIB_DIR:-$REPO/target/release}
RK_BIN=${RK_BIN:-$RK_LIB_DIR/rewardkit}
start=$SECONDS

for f in "$RK_LIB_DIR/librewardkit.so" "$RK_BIN"; do
    if [[ ! -e $f ]]; then
        echo "test.sh: $f not found; build the library or set RK_LIB_DIR / RK_BIN" >&2
        exit 1
    fi
done

# Absolute paths: the commands below run in other directories.
RK_LIB_DIR=$(cd "$RK_LIB_DIR" && pwd)
RK_BIN=$(cd "$(dirname "$RK_BIN")" && pwd)/$(basename "$RK_BIN")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== test bundles in $WORK"
"$RK_BIN" dev tiny-backbone "$WORK/tiny" >/dev/null
"$RK_BIN" init --backbone "$WORK/tiny" --out "$WORK/bundle" --seed 3 >/dev/null
"$RK_BIN" init --backbone "$WORK/tiny" --out "$WORK/bundle5" --seed 3 --outputs helpsteer2 >/dev/null

echo "== generate.py --check"
python3 "$GO_DIR/generate.py" --check
echo "== generate_test.py"
python3 "$GO_DIR/generate_test.py" 2>&1 | tail -n 1

cd "$GO_DIR"

echo "== gofmt"
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
    echo "gofmt would change:" >&2
    echo "$unformatted" >&2
    exit 1
fi

# The user's CGO_LDFLAGS come before the package's own -L, so this library
# wins over target/release at link time and, through the rpath, at run time.
export CGO_LDFLAGS="-L$RK_LIB_DIR -Wl,-rpath,$RK_LIB_DIR ${CGO_LDFLAGS:-}"
export RK_TEST_BUNDLE="$WORK/bundle" RK_TEST_BUNDLE5="$WORK/bundle5"

echo "== go vet"
go vet ./...

echo "== go test"
go test -count=1 ./...

echo "== example: cmd/score-pairs"
go run ./cmd/score-pairs "$WORK/bundle5"

echo "== Go binding checks passed in $((SECONDS - start)) s"
