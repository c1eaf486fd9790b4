#!/usr/bin/env bash
# The two sample videos of `make demo`, `farz count` and the quality baselines (datasets/samples/*.mp4 +
# NAME.truth.json + NAME.yaml): test-split items only (never trained on by the classifier), rendered with
# `farz datasets synth --video`; each truth file lists every item's crossing, so `farz train count-eval` pairs
# counts with items. Rendered 2026-12-06 from the cut-outs of that date (no mask in pieces: the render of
# 2026-11-25 showed a wrapper's mask in two pieces on belt-b as two objects under a truth of one item).
# Run from the repository root after `farz datasets cutouts` (build/cutouts; CUTOUTS=DIR for another folder).
set -euo pipefail
FARZ=${FARZ:-farz}
OUT=${OUT:-datasets/samples}
synth() { "$FARZ" datasets synth --video ${CUTOUTS:+--cutouts "$CUTOUTS"} --split test --size 640x360 --fps 15 "$@" >/dev/null; }
synth --out "$OUT/belt-a.mp4" --direction right --speed 9 --rate 1.0 --seconds 24 --seed 11 --count-as in
synth --out "$OUT/belt-b.mp4" --direction down --speed 7 --rate 0.9 --seconds 20 --seed 22 --count-as out
