"""``InputSizer``: the detector's input size for one stream — the model's own, or larger where items are small.

A frame is scaled so that its long side fits the model's input (320 px for the shipped detector). An item that
is small in the picture — a wide view of the belt, a camera mounted high — is then only a dozen pixels across in
the model's input, and the detector misses some (on 6 validation belts seen wide, five of them with items 7–17 %
of the short side of frames up to 1280×720: 6 of 83 missed at 320 px, 3 with ``auto``; models/README.md). With
``auto`` the sizer measures the first tracks of a stream and, once, gives a model with a free input size a larger
input when their items are under ``small_px`` across in the model's input. Deterministic: the same video gives
the same choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vision.detections import Detections

INPUT_SIZES = (160, 1280)  # px, the long sides a setting may fix (a multiple of the model's stride)
EDGE_PX = 2.0  # px, a box this near the frame's edge is cut by it: not measured


@dataclass(frozen=True)
class InputSizeRule:
    """When ``auto`` enlarges the input. An item's size is its track's largest box short side so far (px in the
    model's input) over the boxes that do not touch the frame's edge (entering, leaving or covered, a box shows
    less of the item, never more).

    Attributes:
        small_px: the median item size under which items are small (the shipped detector's training scenes
            hold items from about 34 px long in its 320-px input, their short sides less).
        target_px: the median item size a larger input aims at.
        tracks: tracks seen at least ``sightings`` times that are measured before deciding, once per stream.
        sightings: frames a track must have been seen in to be measured.
        largest: px, the largest input long side ``auto`` chooses.
    """

    small_px: float = 22.0
    target_px: float = 28.0
    tracks: int = 8
    sightings: int = 5
    largest: int = 640


@dataclass(frozen=True)
class InputSizeChange:
    """What ``auto`` decided: the model's input long side before and after (px), the items' median size in the
    old input (px) and how many tracks it was measured on."""

    old: int
    new: int
    median_px: float
    tracks: int


class InputSizer:
    """The input long side (px) the detector runs at: ``fixed`` when given, else the model's own until
    ``rule.tracks`` tracks have been measured, then — once — larger if their items were small (see the module
    docstring).

    Args:
        fixed: px, a fixed input long side (a multiple of the model's stride), or None for ``auto``.
        rule: when ``auto`` enlarges the input.
    """

    def __init__(self, fixed: int | None = None, rule: InputSizeRule | None = None) -> None:
        self.fixed = fixed
        self.rule = rule or InputSizeRule()
        self.reset()

    def reset(self) -> None:
        """Forget what was measured (a new stream)."""
        self.change: InputSizeChange | None = None
        self._decided = self.fixed is not None
        self._tracks: dict[int, tuple[int, float]] = {}  # track id -> (sightings, largest short side px)

    def size(self, model_size: int, dynamic: bool) -> int:
        """px, the input long side for a model whose own is ``model_size`` (a fixed-shape model, ``dynamic``
        False, always runs at its own)."""
        if not dynamic:
            return model_size
        if self.fixed is not None:
            return self.fixed
        return self.change.new if self.change is not None else model_size

    def observe(
        self, tracked: Detections, frame_size: tuple[int, int], ratio: float, model_size: int, stride: int
    ) -> InputSizeChange | None:
        """Measure one frame's tracked boxes (frame px; ``frame_size`` = (width, height) px; ``ratio`` =
        model-input px per frame px); returns the change the frame it is decided, else None. Costs nothing once
        decided."""
        if self._decided or tracked.tracker_id is None or not len(tracked):
            return None
        xyxy = tracked.xyxy
        width, height = frame_size
        inside = (xyxy[:, 0] > EDGE_PX) & (xyxy[:, 1] > EDGE_PX) & (xyxy[:, 2] < width - EDGE_PX) & (xyxy[:, 3] < height - EDGE_PX)
        short = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]) * ratio
        for tid, side in zip(tracked.tracker_id[inside].tolist(), short[inside].tolist(), strict=True):
            seen, largest = self._tracks.get(tid, (0, 0.0))
            self._tracks[tid] = (seen + 1, max(largest, side))
        sizes = [largest for seen, largest in self._tracks.values() if seen >= self.rule.sightings]
        if len(sizes) < self.rule.tracks:
            return None
        self._decided = True
        self._tracks = {}
        median = float(np.median(sizes))
        if median >= self.rule.small_px:
            return None
        wanted = model_size * self.rule.target_px / max(median, 1.0)
        new = min(self.rule.largest, math.ceil(wanted / stride) * stride)
        if new <= model_size:
            return None
        self.change = InputSizeChange(model_size, new, round(median, 1), len(sizes))
        return self.change
