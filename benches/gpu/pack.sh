#!/usr/bin/env bash
# Prepare .gpu/, what benches/gpu/run.sh needs on a GPU machine that has no
# network: ONNX Runtime 1.31.1 with its CUDA provider (from the
# onnxruntime-gpu wheel, GPU code for one architecture only, see
# strip_fatbin.py), the gpu_check example built here, and MiniLM-L6's config
# and tokenizer (run.sh makes random weights of that shape there). All of it
# xz-compressed, about 62 MiB. Run from the repository root after `make setup`:
#   bash benches/gpu/pack.sh [SM_ARCH]      (default 90: H100/H200)
set -euo pipefail
arch="${1:-90}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/.gpu"
wheels="$root/.rewardkit/gpu-wheel"
backbone="$root/.rewardkit/models/all-MiniLM-L6-v2"
[ -f "$backbone/config.json" ] || { echo "pack.sh: $backbone missing; run make setup first" >&2; exit 1; }

mkdir -p "$wheels"
if ! ls "$wheels"/onnxruntime_gpu-1.31.1-*.whl >/dev/null 2>&1; then
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 -d "$wheels" onnxruntime-gpu==1.31.1
fi
rm -rf "$out" "$wheels/x"
mkdir -p "$out" "$wheels/x"
unzip -q -o "$wheels"/onnxruntime_gpu-1.31.1-*.whl -d "$wheels/x" \
  'onnxruntime/capi/libonnxruntime.so.1.31.1' \
  'onnxruntime/capi/libonnxruntime_providers_shared.so' \
  'onnxruntime/capi/libonnxruntime_providers_cuda.so'
capi="$wheels/x/onnxruntime/capi"
python3 "$root/benches/gpu/strip_fatbin.py" --keep "$arch" \
  "$capi/libonnxruntime_providers_cuda.so" "$capi/cuda.so"
mv "$capi/cuda.so" "$capi/libonnxruntime_providers_cuda.so"
for f in libonnxruntime.so.1.31.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
  xz -9e -T2 -c "$capi/$f" > "$out/$f.xz"
done
rm -rf "$wheels/x"

(cd "$root" && cargo build --release --example gpu_check)
strip -o "$out/gpu_check" "$root/target/release/examples/gpu_check"
xz -9e "$out/gpu_check"

mkdir -p "$out/backbone"
for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json; do
  [ -f "$backbone/$f" ] && cp "$backbone/$f" "$out/backbone/"
done
du -ab "$out" | sort -n | tail -8
echo "pack.sh: $(du -sb "$out" | cut -f1) bytes in .gpu (the device takes 64 MiB per call with the tree)"
