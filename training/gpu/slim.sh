#!/usr/bin/env bash
# The checkout is larger than a GPU call can carry beside its data (64 MiB in all): the committed belt
# videos, sample media and screenshots are not needed to train. `aside` moves them to ../farz-aside before
# the call, `back` puts them back after it (always run it: git sees them as deleted meanwhile).
#   bash training/gpu/slim.sh aside|back
set -euo pipefail
cd "$(dirname "$0")/../.."
aside=../farz-aside
paths=(datasets/belts datasets/samples docs/screenshots)
case "${1:-}" in
  aside)
    mkdir -p "$aside"
    for p in "${paths[@]}"; do
      [ -e "$p" ] && mkdir -p "$aside/$(dirname "$p")" && mv "$p" "$aside/$p"
    done
    echo "what travels now: $(git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1 | awk '{printf "%.1f MiB", $1/1048576}') of tracked files";;
  back)
    for p in "${paths[@]}"; do
      [ -e "$aside/$p" ] && mkdir -p "$(dirname "$p")" && mv "$aside/$p" "$p"
    done
    git status --short -- "${paths[@]}" | head -3;;
  *) echo "usage: bash training/gpu/slim.sh aside|back" >&2; exit 2;;
esac
