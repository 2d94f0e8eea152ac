#!/usr/bin/env bash
# Tests of the Java binding: checks the generated JNA layer against the
# header, makes tiny test bundles, runs the JUnit suite and the example.
#
#   RK_LIB_DIR  folder with librewardkit.so (default: <repo>/target/release)
#   RK_BIN      the rewardkit CLI, to make test bundles (default: $RK_LIB_DIR/rewardkit)
#
# Works from any directory. Needs python3, a JDK (17+) and Maven.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
lib_dir="${RK_LIB_DIR:-$repo/target/release}"
[ -d "$lib_dir" ] || { echo "test.sh: $lib_dir is not a directory (set RK_LIB_DIR)" >&2; exit 1; }
lib_dir="$(cd "$lib_dir" && pwd)"
bin="${RK_BIN:-$lib_dir/rewardkit}"
mvn_flags=(-q -B -Dstyle.color=never)

[ -f "$lib_dir/librewardkit.so" ] || { echo "test.sh: no librewardkit.so in $lib_dir (set RK_LIB_DIR)" >&2; exit 1; }
[ -x "$bin" ] || { echo "test.sh: $bin is not an executable rewardkit CLI (set RK_BIN)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/rewardkit-java.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== generate.py --check"
python3 "$here/generate.py" --check
python3 "$here/test_generate.py" 2>&1

echo "== test bundles"
"$bin" dev tiny-backbone "$work/tiny" >/dev/null
"$bin" init --backbone "$work/tiny" --out "$work/bundle" --seed 3 >/dev/null
"$bin" init --backbone "$work/tiny" --out "$work/bundle5" --seed 3 --outputs helpsteer2 >/dev/null
cp -r "$work/bundle" "$work/broken"
rm "$work/broken/model.onnx"

echo "== mvn test"
cd "$here"
rm -rf target/surefire-reports
status=0
mvn "${mvn_flags[@]}" test \
    -Drewardkit.library.path="$lib_dir" \
    -Drk.test.require=true \
    -Drk.test.bundle="$work/bundle" \
    -Drk.test.bundle5="$work/bundle5" \
    -Drk.test.broken="$work/broken" \
    >"$work/mvn.log" 2>&1 || { status=$?; cat "$work/mvn.log" >&2; }

# Maven -q hides Surefire's summary; count the reports instead.
python3 - target/surefire-reports <<'PY'
import glob, sys, xml.etree.ElementTree as ET
t = f = e = s = 0
for path in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    r = ET.parse(path).getroot()
    t += int(r.get("tests", 0)); f += int(r.get("failures", 0))
    e += int(r.get("errors", 0)); s += int(r.get("skipped", 0))
print(f"java: {t - f - e - s} passed, {f + e} failed, {s} skipped")
PY
[ "$status" -eq 0 ] || { echo "test.sh: mvn test failed" >&2; exit "$status"; }

echo "== example: ScorePairs"
java -Drewardkit.library.path="$lib_dir" -cp "target/classes:$(cat target/classpath.txt)" \
    io.rewardkit.examples.ScorePairs "$work/bundle5"

echo "test.sh: ok"
