#!/usr/bin/env bash
# Test scripts/install.sh: install into a temporary prefix, build
# examples/c/score_pairs.c with nothing but pkg-config's flags, run it from
# a directory outside the repository on a tiny bundle (ONNX Runtime must be
# found beside the installed librewardkit.so), then the same linked
# statically against librewardkit.a. Also checks a DESTDIR install. Builds
# no Rust: RK_LIB_DIR (default <repo>/target/release) and RK_BIN (default
# $RK_LIB_DIR/rewardkit) must exist.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export RK_LIB_DIR=${RK_LIB_DIR:-$repo/target/release}
RK_BIN=${RK_BIN:-$RK_LIB_DIR/rewardkit}
CC=${CC:-cc}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
# Nothing from the caller's environment may point at ONNX Runtime or the library.
unset REWARDKIT_ORT_LIB REWARDKIT_LIB LD_LIBRARY_PATH

fail() { echo "test-install: FAIL: $*" >&2; exit 1; }
command -v pkg-config >/dev/null || fail "pkg-config is not installed"
[ -x "$RK_BIN" ] || fail "$RK_BIN not found (build first, or set RK_LIB_DIR / RK_BIN)"

echo "== install into $prefix"
bash "$repo/scripts/install.sh" "$prefix"

echo "== DESTDIR install"
DESTDIR=$work/stage bash "$repo/scripts/install.sh" /opt/rewardkit >/dev/null
[ -f "$work/stage/opt/rewardkit/lib/librewardkit.so" ] || fail "DESTDIR install has no librewardkit.so"
grep -qx 'prefix=/opt/rewardkit' "$work/stage/opt/rewardkit/lib/pkgconfig/rewardkit.pc" \
    || fail "DESTDIR install: rewardkit.pc does not say prefix=/opt/rewardkit"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
echo "pkg-config --modversion: $(pkg-config --modversion rewardkit)"
echo "pkg-config --cflags --libs: $(pkg-config --cflags --libs rewardkit)"

echo "== bundle"
"$RK_BIN" dev tiny-backbone "$work/tiny" >/dev/null
"$RK_BIN" init --backbone "$work/tiny" --out "$work/bundle" --seed 3 >/dev/null

# Runs a built example in $work (outside the repository, so no
# .rewardkit/ort/ above it), checks that it scored and that it loaded ONNX
# Runtime from the directory $2.
run_example() {
    local exe=$1 ort_dir=$2 out
    out=$(cd "$work" && LD_DEBUG=files "$exe" "$work/bundle" 2>"$work/ld.log") \
        || { grep -v '^ *[0-9]*:' "$work/ld.log" >&2; fail "$exe exited non-zero"; }
    echo "$out"
    grep -Eq '^ *-?[0-9]+\.[0-9]{3}  How do I keep bread fresh' <<<"$out" || fail "$exe printed no rewards"
    grep -Eq '^P\(response 1 is better than response 2\) = [01]\.[0-9]{4}$' <<<"$out" \
        || fail "$exe printed no comparison"
    grep -q "file=$ort_dir/libonnxruntime" "$work/ld.log" \
        || fail "$exe did not load ONNX Runtime from $ort_dir"
}

echo "== shared: cc score_pairs.c \$(pkg-config --cflags --libs rewardkit) -Wl,-rpath,$prefix/lib"
# shellcheck disable=SC2046
"$CC" "$repo/examples/c/score_pairs.c" $(pkg-config --cflags --libs rewardkit) \
    "-Wl,-rpath,$prefix/lib" -o "$work/score_pairs"
readelf -d "$work/score_pairs" | grep -q 'NEEDED.*librewardkit' || fail "not linked to librewardkit.so"
run_example "$work/score_pairs" "$prefix/lib"

echo "== static: librewardkit.a with pkg-config --static"
# With both librewardkit.so and .a in libdir the linker prefers the .so for
# -lrewardkit, so name the archive: -l:librewardkit.a.
static_libs=$(pkg-config --static --libs rewardkit | sed 's/-lrewardkit\b/-l:librewardkit.a/')
echo "cc score_pairs.c $(pkg-config --cflags rewardkit) $static_libs"
# shellcheck disable=SC2086
"$CC" "$repo/examples/c/score_pairs.c" $(pkg-config --cflags rewardkit) $static_libs \
    -o "$work/score_pairs_static"
if readelf -d "$work/score_pairs_static" | grep -q 'NEEDED.*librewardkit'; then
    fail "the static build still needs librewardkit.so"
fi
# Linked statically, the library's own directory is the executable's, so
# ONNX Runtime goes beside the program (or set REWARDKIT_ORT_LIB).
mkdir "$work/bin"
mv "$work/score_pairs_static" "$work/bin/"
cp -P "$prefix"/lib/libonnxruntime* "$work/bin/"
run_example "$work/bin/score_pairs_static" "$work/bin"

echo "test-install: OK"
