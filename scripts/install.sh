#!/usr/bin/env bash
# Install rewardkit for C and C++ users:
#
#   scripts/install.sh [PREFIX]          (PREFIX defaults to /usr/local)
#   DESTDIR=/tmp/stage scripts/install.sh /usr   (staged, for packaging)
#
# Installs PREFIX/include/rewardkit.h, PREFIX/lib/librewardkit.so and
# librewardkit.a, PREFIX/lib/pkgconfig/rewardkit.pc, and the ONNX Runtime
# library from .rewardkit/ort/ (run `make setup` first) beside
# librewardkit.so, where the library looks for it. Builds nothing: it
# installs what `cargo build --release` made.
#
#   RK_LIB_DIR  directory of librewardkit.{so,a}   (default <repo>/target/release)
#   RK_ORT_DIR  directory of libonnxruntime.so.*   (default <repo>/.rewardkit/ort)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

prefix=${1:-/usr/local}
case $prefix in
    /*) ;;
    *) echo "install.sh: PREFIX must be an absolute path, got '$prefix'" >&2; exit 2 ;;
esac
prefix=${prefix%/}
dest=${DESTDIR:-}$prefix
lib_dir=${RK_LIB_DIR:-$repo/target/release}
ort_dir=${RK_ORT_DIR:-$repo/.rewardkit/ort}
header=$repo/include/rewardkit.h

for f in "$lib_dir/librewardkit.so" "$lib_dir/librewardkit.a" "$header"; do
    [ -f "$f" ] || { echo "install.sh: $f not found (run cargo build --release first)" >&2; exit 1; }
done
shopt -s nullglob
ort_libs=("$ort_dir"/libonnxruntime*.so*)
shopt -u nullglob
if [ ${#ort_libs[@]} -eq 0 ]; then
    echo "install.sh: no ONNX Runtime library in $ort_dir (run make setup first)" >&2
    exit 1
fi

version=$(sed -n 's/^#define RK_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$header" | paste -sd.)
case $version in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "install.sh: cannot read RK_VERSION_* from $header" >&2; exit 1 ;;
esac

install -d "$dest/include" "$dest/lib/pkgconfig"
install -m 0644 "$header" "$dest/include/rewardkit.h"
install -m 0644 "$lib_dir/librewardkit.a" "$dest/lib/librewardkit.a"

# Name the shared library after its SONAME when it has one (a real file
# librewardkit.so.X.Y.Z, links SONAME and librewardkit.so); a library built
# without a SONAME is installed as plain librewardkit.so, the name programs
# linked against it then ask for.
soname=$(readelf -d "$lib_dir/librewardkit.so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
rm -f "$dest/lib/librewardkit.so" "$dest/lib/librewardkit.so."*
if [ -n "$soname" ] && [ "$soname" != librewardkit.so ]; then
    install -m 0755 "$lib_dir/librewardkit.so" "$dest/lib/librewardkit.so.$version"
    [ "$soname" = "librewardkit.so.$version" ] || ln -s "librewardkit.so.$version" "$dest/lib/$soname"
    ln -s "$soname" "$dest/lib/librewardkit.so"
else
    install -m 0755 "$lib_dir/librewardkit.so" "$dest/lib/librewardkit.so"
fi

# ONNX Runtime, copied as it is (links stay links).
cp -P "${ort_libs[@]}" "$dest/lib/"

sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$repo/rewardkit.pc.in" \
    > "$dest/lib/pkgconfig/rewardkit.pc"
chmod 0644 "$dest/lib/pkgconfig/rewardkit.pc"

echo "installed rewardkit $version into $dest"
echo "  include/rewardkit.h"
(cd "$dest/lib" && for f in librewardkit.* libonnxruntime* pkgconfig/rewardkit.pc; do echo "  lib/$f"; done)
# Refresh the loader cache for the system prefixes; elsewhere, link with
# -Wl,-rpath,PREFIX/lib or set LD_LIBRARY_PATH.
case $prefix in
    /usr | /usr/local)
        if [ -z "${DESTDIR:-}" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
            ldconfig
        fi
        ;;
esac
