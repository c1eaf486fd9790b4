#!/usr/bin/env bash
# The committed belt videos with truth (datasets/belts/*.mp4 + NAME.truth.json + NAME.yaml): the quality
# baseline for counting. Test-split items only (by item: never trained on by the classifier), rendered with
# `farz datasets synth --video`; each truth file lists every item's crossing, so `farz train count-eval`
# pairs counts with items. Rendered 2026-12-05 from the cut-outs of that date (no mask in pieces: an earlier
# render showed the pieces of one such mask as separate objects, each counted, under a truth of one item).
# Each row: name, direction, speed px/frame, items/s, seconds, size, item scale.
# Run from the repository root after `farz datasets cutouts` (build/cutouts; CUTOUTS=DIR for another folder).
set -euo pipefail
FARZ=${FARZ:-farz}
OUT=${OUT:-datasets/belts}
seed=${SEED:-1000}
while read -r name direction speed rate seconds size scale; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  seed=$((seed + 1))
  "$FARZ" datasets synth --video ${CUTOUTS:+--cutouts "$CUTOUTS"} --split "${SPLIT:-test}" --out "$OUT/$name.mp4" --direction "$direction" --speed "$speed" \
    --rate "$rate" --seconds "$seconds" --size "$size" --scale "$scale" --fps 15 --seed "$seed" >/dev/null
  echo "$name: $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts'])" "$OUT/$name.truth.json")"
done <<'ROWS'
# name            dir    speed rate seconds size     scale
right-slow        right  5     0.8  15      416x234  0.2,0.42
right-medium      right  9     1.2  12      416x234  0.2,0.42
right-fast        right  14    1.5  10      416x234  0.2,0.42
right-dense       right  9     2.5  12      416x234  0.2,0.42
left-slow         left   5     0.8  15      416x234  0.2,0.42
left-medium       left   9     1.2  12      416x234  0.2,0.42
left-fast         left   14    1.5  10      416x234  0.2,0.42
left-dense        left   9     2.5  12      416x234  0.2,0.42
down-medium       down   7     1.2  14      288x288  0.2,0.42
down-fast         down   12    1.5  10      288x288  0.2,0.42
down-dense        down   7     2.5  14      288x288  0.2,0.42
up-medium         up     7     1.2  14      288x288  0.2,0.42
up-fast           up     12    1.5  10      288x288  0.2,0.42
up-dense          up     7     2.5  14      288x288  0.2,0.42
small-right       right  8     2.0  12      416x234  0.12,0.25
small-left        left   8     2.0  12      416x234  0.12,0.25
small-down        down   6     2.0  14      288x288  0.12,0.25
closeup-right     right  10    0.7  14      416x234  0.45,0.65
closeup-left      left   10    0.7  14      416x234  0.45,0.65
closeup-down      down   8     0.7  14      288x288  0.45,0.65
overlap-right     right  8     3.5  12      416x234  0.25,0.45
overlap-down      down   6     3.5  14      288x288  0.25,0.45
wide-right        right  11    1.5  12      512x288  0.15,0.35
wide-left         left   11    1.5  12      512x288  0.15,0.35
ROWS
