#!/usr/bin/env bash
# Belts seen wide (`farz datasets synth --video`): items 7-17 % of the short side of frames up to 1280x720, so
# that they are only 12-30 px across in the detector's 320-px input, and one belt of larger items (20-40 %) that
# must keep the model's size — the check of `input_size: auto` (README, *Small items*). Validation items by default (for choosing); SPLIT=test for reporting. Not committed:
#   SPLIT=val OUT=build/wide-belts bash datasets/belts/render-wide.sh && farz train count-eval --videos build/wide-belts
# Each row: name, direction, speed px/frame, items/s, seconds, size, fps, item scale.
set -euo pipefail
OUT=${OUT:-build/wide-belts} SEED=${SEED:-7300} bash "$(dirname "$0")/render-rows.sh" <<'ROWS'
# name          dir    speed rate seconds size      fps scale
wide-hd-left    left   16    1.8  15      1280x720  25  0.07,0.15
wide-hd-up      up     12    1.5  15      1280x720  25  0.09,0.17
wide-960-right  right  10    2.0  15      960x540   25  0.08,0.16
wide-800-down   down   8     1.8  15      800x600   25  0.08,0.15
small-640-left  left   7     2.0  15      640x360   15  0.08,0.14
hd-large-right  right  20    1.2  15      1280x720  25  0.2,0.4
ROWS
