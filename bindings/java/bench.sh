#!/usr/bin/env bash
# Latency of single-pair Scorer.score calls through the Java binding.
#
#   bindings/java/bench.sh BUNDLE N      prints: median_us=<float> p99_us=<float>
#
# RK_LIB_DIR names the folder with librewardkit.so (default: <repo>/target/release).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUNDLE N" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
lib_dir="${RK_LIB_DIR:-$repo/target/release}"
bundle="$(cd "$1" && pwd)"

cd "$here"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
mvn -q -B -Dstyle.color=never package -DskipTests >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
java -Drewardkit.library.path="$lib_dir" \
    -cp "target/rewardkit-0.1.0.jar:$(cat target/classpath.txt)" \
    io.rewardkit.examples.Bench "$bundle" "$2"
