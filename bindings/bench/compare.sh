#!/usr/bin/env bash
# Per-call overhead of the bindings against C: time N single-pair score calls
# on BUNDLE through C (bench_c.c), Python (bindings/python/bench.py), Go
# (bindings/go: go run ./cmd/bench) and Java (bindings/java/bench.sh), in
# ROUNDS rounds that alternate the bindings, and print a markdown table of
# the median over rounds of each run's median and p99.
#
#   bindings/bench/compare.sh BUNDLE N
#
#   RK_LIB_DIR  directory of librewardkit.so   (default <repo>/target/release)
#   ROUNDS      rounds of every binding        (default 3)
#   PYTHON      Python for bench.py            (default <repo>/.rewardkit/venv/bin/python, else python3)
#
# A binding whose bench is missing or fails is skipped with a note. Builds no
# Rust. Each bench prints `median_us=M p99_us=P`; all run in the repository
# root, where librewardkit finds ONNX Runtime (.rewardkit/ort/).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 BUNDLE N" >&2
    exit 2
fi
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bundle=$(cd "$1" && pwd)
n=$2
rounds=${ROUNDS:-3}
export RK_LIB_DIR=$(cd "${RK_LIB_DIR:-$repo/target/release}" && pwd)
export REWARDKIT_LIB=$RK_LIB_DIR/librewardkit.so
# As bindings/go/test.sh does: the caller's library first.
export CGO_LDFLAGS="-L$RK_LIB_DIR -Wl,-rpath,$RK_LIB_DIR ${CGO_LDFLAGS:-}"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=$repo/.rewardkit/venv/bin/python
    [ -x "$PYTHON" ] || PYTHON=python3
fi
cd "$repo"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
notes=()

cc -O2 -std=c11 -Wall -Wextra -Iinclude bindings/bench/bench_c.c \
    -L"$RK_LIB_DIR" -lrewardkit "-Wl,-rpath,$RK_LIB_DIR" -o "$work/bench_c"

run_c() { "$work/bench_c" "$bundle" "$n"; }
run_python() { "$PYTHON" bindings/python/bench.py "$bundle" "$n"; }
run_go() { (cd bindings/go && go run ./cmd/bench -bundle "$bundle" -n "$n"); }
run_java() { bash bindings/java/bench.sh "$bundle" "$n"; }
# For `timeout bash -c run_X`.
export -f run_c run_python run_go run_java
export work bundle n PYTHON

bindings=(c python)
if [ ! -d bindings/go/cmd/bench ]; then
    notes+=("go: skipped, bindings/go/cmd/bench not found")
elif ! command -v go >/dev/null; then
    notes+=("go: skipped, no go command")
else
    bindings+=(go)
fi
if [ -f bindings/java/bench.sh ]; then
    bindings+=(java)
else
    notes+=("java: skipped, bindings/java/bench.sh not found")
fi

# results[binding] = "median p99" lines, one per successful round.
declare -A results failed
for ((r = 0; r < rounds; r++)); do
    # Rotate the order each round so no binding always runs first.
    count=${#bindings[@]}
    for ((i = 0; i < count; i++)); do
        b=${bindings[$(((i + r) % count))]}
        [ -n "${failed[$b]:-}" ] && continue
        if out=$(timeout 600 bash -c "run_$b" 2>"$work/$b.err"); then
            line=$(grep -Eo 'median_us=[0-9.]+ p99_us=[0-9.]+' <<<"$out" | tail -n1 || true)
        else
            line=""
        fi
        if [ -z "$line" ]; then
            failed[$b]=1
            notes+=("$b: skipped, its bench failed: $(tail -n3 "$work/$b.err" | tr '\n' ' ')")
            continue
        fi
        echo "round $((r + 1)) $b: $line" >&2
        results[$b]+="$(sed -E 's/median_us=([0-9.]+) p99_us=([0-9.]+)/\1 \2/' <<<"$line")"$'\n'
    done
done

# The median of column $1 of the lines on stdin.
median_of() { sort -g -k"$1","$1" | awk -v c="$1" '{v[NR] = $c} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

[ -n "${results[c]:-}" ] || { echo "compare.sh: the C bench failed: $(cat "$work/c.err")" >&2; exit 1; }
c_median=$(printf '%s' "${results[c]}" | median_of 1)

echo
echo "Single-pair score latency, $(basename "$bundle"), N=$n, median of $rounds rounds"
echo
echo "| binding | median µs | p99 µs | overhead vs C |"
echo "|---|---:|---:|---|"
for b in "${bindings[@]}"; do
    [ -n "${results[$b]:-}" ] && [ -z "${failed[$b]:-}" ] || continue
    med=$(printf '%s' "${results[$b]}" | median_of 1)
    p99=$(printf '%s' "${results[$b]}" | median_of 2)
    if [ "$b" = c ]; then
        over="(baseline)"
    else
        over=$(awk -v m="$med" -v c="$c_median" 'BEGIN {printf "%+.1f µs (×%.2f)", m - c, m / c}')
    fi
    printf '| %s | %.1f | %.1f | %s |\n' "$b" "$med" "$p99" "$over"
done
for note in "${notes[@]}"; do
    echo
    echo "Note: $note"
done
