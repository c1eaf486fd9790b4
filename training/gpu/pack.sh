#!/usr/bin/env bash
# Here, before a GPU call: the wheels the GPU machine lacks (Ultralytics, pydantic and the typing-extensions
# it needs, for its Python 3.12) into .gpu/whl, and the packed train/val cut-outs and photos into .gpu/cutouts.
# Both are git-ignored; name `.gpu` in the call's `carry`. See training/gpu/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
farz=${FARZ:-.venv/bin/farz}
python=${PYTHON:-python3}
mkdir -p .gpu/whl
rm -f .gpu/whl/*.whl
# One version of each; ultralytics without its polars (farz reads results.csv itself) and opencv-python (the image has headless).
for pkg in ultralytics==8.4.190 ultralytics-thop==2.2.3 ultralytics-platform==0.1.99 \
           pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0; do
  $python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl "$pkg"
done
[ -f build/cutouts/report.json ] || $farz datasets cutouts --out build/cutouts
$farz datasets pack --cutouts build/cutouts --out .gpu/cutouts
du -sh .gpu/whl .gpu/cutouts
echo "tracked files that travel too: $(git ls-files -z | du -ch --files0-from=- | tail -1 | cut -f1) (the call's limit is 64 MiB in all)"
