#!/usr/bin/env bash
# The GPU check, run on a machine with an NVIDIA GPU, from the repository
# root, after benches/gpu/pack.sh filled .gpu/ (which must travel with the
# tree). Needs that machine's python3 with torch and transformers and the
# CUDA 13 runtime, cuBLAS, cuRAND and cuDNN libraries of its nvidia-* Python
# packages; needs no network.
#
# 1. rewardkit trains 10 steps on the CPU and on CUDA from the same start and
#    compares the losses, and scores the CUDA-trained bundle on both;
# 2. rewardkit and PyTorch eager, one after the other on the same GPU: MiniLM-L6
#    training steps (128 and 256 tokens) and scoring (fixed shapes, fp32 and
#    fp16);
# 3. benches/gpu/report.py prints the table.
#
# The backbone has MiniLM-L6-v2's shape, config and tokenizer, and random
# weights (seed 0) made here with transformers: the checkpoint itself does
# not fit in the transfer beside ONNX Runtime's CUDA provider, and speed and
# CPU/GPU agreement do not depend on the weights' values.
#
#   bash benches/gpu/run.sh [RESULTS_DIR]        (default: $OUT, or ./gpu-results)
set -uo pipefail
res="${1:-${OUT:-gpu-results}}"
mkdir -p "$res"
work=/tmp/rewardkit-gpu
rm -rf "$work" && mkdir -p "$work/ort" "$work/backbone"
log() { echo "== $*" >&2; }

log "unpacking .gpu"
for f in .gpu/*.so*.xz; do
  base="$(basename "$f" .xz)"
  xz -dc "$f" > "$work/ort/$base" || { echo "cannot unpack $f" >&2; exit 1; }
done
xz -dc .gpu/gpu_check.xz > "$work/gpu_check" && chmod +x "$work/gpu_check"
cp .gpu/backbone/* "$work/backbone/"

nvidia-smi -L || true
py=python3
libdirs="$($py - <<'PY'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
PY
)"
export LD_LIBRARY_PATH="$work/ort:$libdirs:${LD_LIBRARY_PATH:-}"
export REWARDKIT_ORT_LIB="$work/ort/libonnxruntime.so.1.31.1"
log "libraries the CUDA provider cannot find (none expected):"
ldd "$work/ort/libonnxruntime_providers_cuda.so" | grep "not found" || echo "none" >&2

log "making the backbone's weights"
$py - "$work/backbone" <<'PY' || exit 1
import sys, torch
from transformers import BertConfig, BertModel
path = sys.argv[1]
torch.manual_seed(0)
model = BertModel(BertConfig.from_pretrained(path), add_pooling_layer=False)
model.save_pretrained(path)
print(f"{sum(p.numel() for p in model.parameters())} parameters", file=sys.stderr)
PY

cases=32x256,1x128,128x256
log "rewardkit"
"$work/gpu_check" "$work/backbone" --device cuda:0 --loss-steps 10 --iters 20 --warmup 3 \
  --train-lengths 128,256 --score-cases "$cases" --precisions fp32,fp32-portable,fp16 \
  | tee "$res/rewardkit.jsonl"
rk=$?
log "PyTorch"
$py benches/gpu/torch_gpu.py --backbone "$work/backbone" --device cuda --iters 20 --warmup 3 \
  --cases "score-${cases//,/,score-},train-128,train-256" --precisions fp32,fp16 \
  | tee "$res/pytorch.jsonl"
pt=$?
log "report"
$py benches/gpu/report.py "$res/rewardkit.jsonl" "$res/pytorch.jsonl" | tee "$res/report.md"
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv || true
echo "rewardkit exit $rk, PyTorch exit $pt"
[ "$rk" = 0 ] && [ "$pt" = 0 ]
