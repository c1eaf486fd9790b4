#!/usr/bin/env bash
# Belt videos as a tilted wide-angle camera sees them (`farz datasets camera-belt`): a second renderer, unlike the
# one that makes the training scenes and datasets/belts, to check that counting holds on belts of another look —
# perspective and lens distortion, 25-30 frames/s, larger frames, cleated, ribbed and light belts with their side
# frame and the floor beside them, items that spin and drift, some cut out loosely. Test-split items only. The
# videos are not committed (about 3 MB each); render them (about 6 minutes) and count them:
#   bash datasets/camera-belts/render.sh && farz train count-eval --videos build/camera-belts
# Each row: name, direction, speed px/frame, items/s, seconds, size, fps, tilt, distortion, surface, item scale.
set -euo pipefail
FARZ=${FARZ:-farz}
OUT=${OUT:-build/camera-belts}
seed=${SEED:-5000}
while read -r name direction speed rate seconds size fps tilt distortion surface scale; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  seed=$((seed + 1))
  "$FARZ" datasets camera-belt ${CUTOUTS:+--cutouts "$CUTOUTS"} --split "${SPLIT:-test}" --out "$OUT/$name.mp4" --direction "$direction" \
    --speed "$speed" --rate "$rate" --seconds "$seconds" --size "$size" --fps "$fps" --tilt "$tilt" --distortion "$distortion" \
    --surface "$surface" --scale "$scale" --seed "$seed" >/dev/null
  echo "$name: $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts'])" "$OUT/$name.truth.json")"
done <<'ROWS'
# name             dir    speed rate seconds size     fps tilt distortion surface  scale
down-cleated       down   5     1.2  20      640x480  30  0.35 0.08       cleated  0.16,0.32
down-plain         down   4     1.0  20      640x480  30  0.2  0.0        plain    0.16,0.32
down-dense         down   5     2.5  20      640x480  30  0.3  0.05       plain    0.16,0.3
down-wide          down   7     1.5  20      960x540  30  0.5  0.15       cleated  0.16,0.32
up-ribbed          up     4     1.2  20      640x480  30  0.45 0.08       ribbed   0.16,0.32
up-cleated         up     5     1.5  20      800x600  25  0.3  0.1        cleated  0.14,0.28
right-plain        right  6     1.3  20      640x480  30  0.3  0.08       plain    0.16,0.32
right-dense        right  6     2.5  20      640x480  30  0.35 0.08       ribbed   0.16,0.3
right-cleated      right  8     1.5  20      960x540  25  0.25 0.12       cleated  0.14,0.28
left-cleated       left   6     1.3  20      640x480  30  0.4  0.08       cleated  0.16,0.32
left-small         left   5     2.0  20      640x480  30  0.3  0.08       plain    0.1,0.2
left-large         left   6     0.8  20      800x600  30  0.2  0.05       ribbed   0.3,0.45
empty-down         down   5     0    30      640x480  30  0.35 0.08       cleated  0.16,0.32
empty-up           up     5     0    30      800x600  25  0.3  0.1        ribbed   0.16,0.32
empty-right        right  6     0    30      640x480  30  0.35 0.08       cleated  0.16,0.32
empty-left         left   7     0    30      960x540  30  0.45 0.12       plain    0.16,0.32
ROWS
