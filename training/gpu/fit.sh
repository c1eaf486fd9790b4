#!/usr/bin/env bash
# One call on the lent GPU machine: install the carried wheels, render the packed cut-outs, fit (from the
# shipped FP32 file by default), and leave the run's weights and results in $OUT. See training/gpu/README.md.
#   bash training/gpu/fit.sh [CONFIG]          CONFIG defaults to training/configs/gpu.yaml
# FARZ_GPU_NO_INSTALL=1 skips the wheels (a machine that has Ultralytics, e.g. this one for a dry run).
set -euo pipefail
config=${1:-training/configs/gpu.yaml}
out=${OUT:-build/gpu-out}
run=build/gpu-run
mkdir -p "$out"
if [ -z "${FARZ_GPU_NO_INSTALL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
rm -rf "$run" build/gpu-synth
status=0
$python -m farz train fit --config "$config" --run "$run" --data build/gpu-synth 2>&1 | tee "$out/fit.log" || status=$?
for f in weights/best.pt weights/last.pt results.csv config.yaml args.yaml data_hash.txt; do
  [ -f "$run/$f" ] && cp "$run/$f" "$out/"
done
ls -la "$out"
exit "$status"
