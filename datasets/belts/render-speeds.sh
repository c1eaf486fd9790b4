#!/usr/bin/env bash
# Belts at other speeds and sizes (`farz datasets synth --video`): crawling to fast (1.5-30 px a frame at 12-30
# frames/s), frames of 480x360 to 1280x720, some with items only 7-20 % of the short side — the set the rule of
# `input_size: auto` was set on (models/README.md; datasets/belts/render-wide.sh is the set it was checked on).
# Validation items by default. Not committed:
#   OUT=build/speed-belts bash datasets/belts/render-speeds.sh && farz train count-eval --videos build/speed-belts
# (add `input_size: 320` to each NAME.yaml to count at the model's own size). Each row: name, direction, speed
# px/frame, items/s, seconds, size, fps, item scale.
set -euo pipefail
OUT=${OUT:-build/speed-belts} SEED=${SEED:-7100} bash "$(dirname "$0")/render-rows.sh" <<'ROWS'
# name        dir    speed rate seconds size      fps scale
crawl-down    down   1.5   0.5  30      480x360   30  0.2,0.4
slow-right    right  2.5   0.8  25      640x360   30  0.15,0.3
fast-right    right  22    1.5  15      640x360   15  0.15,0.3
fast-left     left   30    2.0  15      640x360   15  0.15,0.3
fast-down     down   26    1.5  15      480x480   12  0.15,0.3
hd-right      right  14    1.5  15      1280x720  25  0.08,0.16
hd-down       down   12    1.5  15      1280x720  25  0.1,0.2
tiny-right    right  8     2.0  15      640x360   15  0.07,0.12
ROWS
