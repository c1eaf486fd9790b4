#!/usr/bin/env bash
# The two sample videos of `make demo`, `farz count` and the quality baselines (datasets/samples/*.mp4 +
# NAME.truth.json + NAME.yaml): test-split items only (never trained on by the classifier), rendered with
# `farz datasets synth --video`; each truth file lists every item's crossing, so `farz train count-eval` pairs
# counts with items. Rendered 2026-12-06 from the cut-outs of that date (no mask in pieces: the render of
# 2026-11-25 showed a wrapper's mask in two pieces on belt-b as two objects under a truth of one item).
# Each row: name, direction, speed px/frame, items/s, seconds, seed, the way the belt's motion counts.
# Run from the repository root after `farz datasets cutouts` (build/cutouts; CUTOUTS=DIR for another folder).
set -euo pipefail
FARZ=${FARZ:-farz}
OUT=${OUT:-datasets/samples}
while read -r name direction speed rate seconds seed count_as; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  "$FARZ" datasets synth --video ${CUTOUTS:+--cutouts "$CUTOUTS"} --split test --out "$OUT/$name.mp4" --direction "$direction" \
    --speed "$speed" --rate "$rate" --seconds "$seconds" --size 640x360 --fps 15 --seed "$seed" --count-as "$count_as" >/dev/null
  echo "$name: $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts'])" "$OUT/$name.truth.json")"
done <<'ROWS'
# name   dir    speed rate seconds seed count-as
belt-a   right  9     1.0  24      11   in
belt-b   down   7     0.9  20      22   out
ROWS
