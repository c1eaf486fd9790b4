#!/usr/bin/env bash
# Here, before a GPU call: the wheels the GPU machine lacks (for its Python 3.12) into .gpu/whl, and the data.
#   bash training/gpu/pack.sh [detector]   Ultralytics + pydantic; train/val cut-outs and their photos -> .gpu/cutouts
#   bash training/gpu/pack.sh classifier   efficientnet-lite-pytorch + pydantic; cut-outs and the class photos -> .gpu/classify
# All is git-ignored; name `.gpu` in the call's `carry`. See training/gpu/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
farz=${FARZ:-.venv/bin/farz}
python=${PYTHON:-python3}
mode=${1:-detector}
mkdir -p .gpu/whl
rm -f .gpu/whl/*.whl
pydantic="pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0"
# One version of each; ultralytics without its polars (farz reads results.csv itself) and opencv-python (the image has headless).
case "$mode" in
  detector) packages="ultralytics==8.4.190 ultralytics-thop==2.2.3 ultralytics-platform==0.1.99 $pydantic";;
  classifier) packages="efficientnet-lite-pytorch==0.1.0 $pydantic";;  # the ImageNet weights stay here: init is the shipped ONNX file
  *) echo "usage: bash training/gpu/pack.sh [detector|classifier]" >&2; exit 2;;
esac
for pkg in $packages; do
  $python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl "$pkg"
done
[ -f build/cutouts/report.json ] || $farz datasets cutouts --out build/cutouts
if [ "$mode" = classifier ]; then
  $farz datasets pack --cutouts build/cutouts --no-photos --class-photos --out .gpu/classify
  $python -c "from pathlib import Path; from training.classify_export import photo_list_hash; from training.taxonomy import load_taxonomy; \
print(photo_list_hash(Path('../shared/datasets/trashnet'), load_taxonomy().names, 'train'))" > .gpu/classify/data_hash.txt
  du -sh .gpu/whl .gpu/classify
else
  $farz datasets pack --cutouts build/cutouts --out .gpu/cutouts
  du -sh .gpu/whl .gpu/cutouts
fi
echo "tracked files that travel too: $(git ls-files -z | du -ch --files0-from=- | tail -1 | cut -f1) (the call's limit is 64 MiB in all)"
