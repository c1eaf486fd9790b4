#!/usr/bin/env bash
# Renders the belt videos of the rows on stdin with `farz datasets synth --video`, for render-speeds.sh and
# render-wide.sh: one video per row into OUT, seeds counting up from SEED, items of SPLIT (default val), and
# prints each video's true counts. Each row: name, direction, speed px/frame, items/s, seconds, size, fps,
# item scale; blank lines and lines starting with # are skipped.
set -euo pipefail
FARZ=${FARZ:-farz}
seed=$SEED
while read -r name direction speed rate seconds size fps scale; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  seed=$((seed + 1))
  "$FARZ" datasets synth --video ${CUTOUTS:+--cutouts "$CUTOUTS"} --split "${SPLIT:-val}" --out "$OUT/$name.mp4" --direction "$direction" \
    --speed "$speed" --rate "$rate" --seconds "$seconds" --size "$size" --scale "$scale" --fps "$fps" --seed "$seed" >/dev/null
  echo "$name: $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts'])" "$OUT/$name.truth.json")"
done
