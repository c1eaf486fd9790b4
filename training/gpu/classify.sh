#!/usr/bin/env bash
# One call on the lent GPU machine for the material classifier: install the carried wheels, fine-tune from
# the packed photos and cut-outs, export best.pt to FP32 ONNX there (a Lite0 best.pt is 18.6 MB, over the
# 16 MiB a returned file may have; the ONNX file is 13 MB) and leave it with the run's results in $OUT.
#   bash training/gpu/classify.sh [CONFIG]     CONFIG defaults to training/configs/gpu-classifier.yaml
# FARZ_GPU_NO_INSTALL=1 skips the wheels (a machine that has the training extra, e.g. this one for a dry run).
set -euo pipefail
config=${1:-training/configs/gpu-classifier.yaml}
out=${OUT:-build/gpu-out}
run=build/gpu-classify-run
mkdir -p "$out"
if [ -z "${FARZ_GPU_NO_INSTALL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
rm -rf "$run"
status=0
$python -m farz train classify-fit --config "$config" --run "$run" 2>&1 | tee "$out/classify-fit.log" || status=$?
if [ -f "$run/best.pt" ]; then
  $python -m farz train classify-export "$run/best.pt" --out "$out/farz-material-gpu.onnx" \
    --data-hash "$(cat .gpu/classify/data_hash.txt 2>/dev/null || true)" || status=$?
fi
for f in results.csv config.yaml; do
  [ -f "$run/$f" ] && cp "$run/$f" "$out/"
done
ls -la "$out"
exit "$status"
