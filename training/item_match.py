"""Which true item each count event counted, on a video whose truth lists every item's crossing.

An event counts item *i* when, at the event's frame, the counted track's box centre lies inside item *i*'s
image box as it was then (its crossing position moved on by its velocity, plus ``slack`` of the frame), no
more than ``max_frames`` from the item's crossing: an item missed by the detector for a while is still
counted late by its own track. Events and items are paired one to one at least total distance. An event
left over that lies on an item is that item counted **twice**; one that lies on none counted **no item**
(a stain, a rail, a piece of machinery); an item left over was **missed**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from device.truth import TrueCrossing
from vision.assignment import linear_assignment


@dataclass(frozen=True)
class CountedAt:
    """A count event and where its track was: frame (0-based), box centre (0-1 of the frame), direction."""

    frame: int
    x: float
    y: float
    direction: str
    track_id: int


@dataclass(frozen=True)
class ItemMatch:
    """Events against true items: paired, items counted twice, events on no item, items missed, and paired
    events whose direction is not the item's."""

    paired: int
    twice: int
    no_item: int
    missed: int
    wrong_direction: int


@dataclass(frozen=True)
class ItemJudgement:
    """Each event's verdict and the items no event counted: ``verdicts[r]`` is ``paired``, ``wrong_direction``
    (paired, the other way), ``twice`` or ``no_item``; ``item_of[r]`` the index of the item event r lies on
    best (-1: none); ``missed`` the indices of the items left over."""

    verdicts: tuple[str, ...]
    item_of: tuple[int, ...]
    missed: tuple[int, ...]

    def summary(self) -> ItemMatch:
        """The counts of each verdict."""
        v = self.verdicts
        paired = sum(1 for x in v if x in ("paired", "wrong_direction"))
        return ItemMatch(paired, v.count("twice"), v.count("no_item"), len(self.missed), v.count("wrong_direction"))


def judge_items(events: Sequence[CountedAt], items: Sequence[TrueCrossing], max_frames: int = 45, slack: float = 0.03) -> ItemJudgement:
    """Pair ``events`` with ``items`` (see the module docstring) and say what each event was."""
    far = 1e6
    cost = np.full((len(events), len(items)), far, np.float32)
    for r, e in enumerate(events):
        for c, it in enumerate(items):
            dt = e.frame - it.frame
            if abs(dt) > max_frames:
                continue
            dx = abs(e.x - (it.x + it.vx * dt)) / (it.w / 2 + slack)
            dy = abs(e.y - (it.y + it.vy * dt)) / (it.h / 2 + slack)
            if max(dx, dy) <= 1.0:
                cost[r, c] = float(np.hypot(dx, dy)) + abs(dt) / max_frames
    pairs = dict(linear_assignment(cost, far / 2))
    verdicts, item_of = [], []
    for r, e in enumerate(events):
        nearest = int(cost[r].argmin()) if len(items) and cost[r].min() < far / 2 else -1
        if r in pairs:
            c = pairs[r]
            verdicts.append("paired" if e.direction == items[c].direction else "wrong_direction")
            item_of.append(c)
        else:
            verdicts.append("twice" if nearest >= 0 else "no_item")
            item_of.append(nearest)
    counted = set(pairs.values())
    return ItemJudgement(tuple(verdicts), tuple(item_of), tuple(c for c in range(len(items)) if c not in counted))


def match_items(events: Sequence[CountedAt], items: Sequence[TrueCrossing], max_frames: int = 45, slack: float = 0.03) -> ItemMatch:
    """Pair ``events`` with ``items`` (see the module docstring): how many of each verdict."""
    return judge_items(events, items, max_frames, slack).summary()
