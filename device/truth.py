"""A video's true counts, ``NAME.truth.json`` beside ``NAME.mp4``: read, checked and put in one shape.

The shape farz writes (``farz datasets synth --video``) and every reader returns::

    {"counts": {"in": {"glass": 2, "paper": 1}, "out": {}}, ...}

Also read, for truth written by other tools: ``counts`` per class without directions
(``{"counts": {"glass": 2}}``: totals whatever the direction, returned as ``in``), and a file that is the
``counts`` object itself. A count is a whole number ≥ 0; class names are matched without regard to case,
and with ``names`` given, a class outside them is an error (an item no model can count under that name).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from device.count_config import ConfigError

Counts = dict[str, dict[str, int]]  # counts[direction][class]
DIRECTIONS = ("in", "out")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def truth_path(video: Path) -> Path:
    """``NAME.truth.json`` beside ``NAME.<ext>``."""
    return video.with_suffix(".truth.json")


def read_truth(path: Path, names: Sequence[str] | None = None) -> Counts:
    """The true counts in ``path`` as ``{"in": {class: n}, "out": {class: n}}``; raises ``ConfigError`` in one
    line naming the file and what is wrong."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such truth file (NAME.truth.json beside NAME.mp4)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the truth file ({exc.strerror})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a JSON truth file ({exc})") from exc
    counts = raw.get("counts", raw) if isinstance(raw, dict) else raw
    if not isinstance(counts, dict):
        raise ConfigError(f'{path}: "counts" must be an object like {{"in": {{"glass": 2}}, "out": {{}}}}, got {type(counts).__name__}')
    if counts and all(key in DIRECTIONS for key in counts):
        by_direction = counts
    elif any(key in DIRECTIONS for key in counts):
        keys = ", ".join(sorted(counts))
        raise ConfigError(f'{path}: "counts" mixes directions and classes ({keys}); give {{"in": {{...}}, "out": {{...}}}}')
    else:
        by_direction = {"in": counts}
    known = {n.lower(): n for n in names} if names is not None else None
    out: Counts = {d: {} for d in DIRECTIONS}
    for direction, per_class in by_direction.items():
        if not isinstance(per_class, dict):
            raise ConfigError(f'{path}: counts "{direction}" must be an object of class: count, got {type(per_class).__name__}')
        for name, n in per_class.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ConfigError(f'{path}: count of "{name}" ({direction}) must be a whole number >= 0, got {n!r}')
            label = name.lower()
            if known is not None:
                if label not in known:
                    raise ConfigError(f'{path}: class "{name}" is not one the models count ({", ".join(known.values())})')
                label = known[label]
            out[direction][label] = out[direction].get(label, 0) + n
    return out


@dataclass(frozen=True)
class TrueCrossing:
    """One item crossing the count line in a rendered video: the first frame (0-based) its centre is past
    the line, its class and direction, its centre and image size then (0-1 of the frame) and its velocity
    (0-1 of the frame per frame)."""

    frame: int
    class_name: str
    direction: str
    x: float
    y: float
    w: float
    h: float
    vx: float
    vy: float


def read_crossings(path: Path) -> list[TrueCrossing] | None:
    """The per-item ``crossings`` of a truth file (``farz datasets synth --video`` writes them), or None when
    it has none (truth of counts only); raises ``ConfigError`` naming the file when they are malformed."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the truth file ({exc})") from exc
    if not isinstance(raw, dict) or "crossings" not in raw:
        return None
    rows = raw["crossings"]
    if not isinstance(rows, list):
        raise ConfigError(f'{path}: "crossings" must be a list of items, got {type(rows).__name__}')
    out = []
    for k, row in enumerate(rows):
        try:
            out.append(
                TrueCrossing(
                    int(row["frame"]),
                    str(row["class"]),
                    str(row["direction"]),
                    *(float(row[key]) for key in ("x", "y", "w", "h", "vx", "vy")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: crossings[{k}] needs frame, class, direction, x, y, w, h, vx, vy ({exc!r})") from None
        if out[-1].direction not in DIRECTIONS:
            raise ConfigError(f'{path}: crossings[{k}] direction must be "in" or "out", got {out[-1].direction!r}')
    return out
