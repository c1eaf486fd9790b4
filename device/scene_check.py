"""``farz device check-scene``: count a stretch of empty belt and propose ignore zones where false items appear.

On an empty belt every track is a false item: a rail, a roller, a belt joint, a stain or a reflection that
the detector takes for an item. The check runs the device's own pipeline (with the ignore zones already
set) over the footage, keeps every track seen in at least ``min_frames`` frames, and proposes one ignore zone
per cluster of them: the box around the centres of their boxes (an ignore zone drops detections *centred*
inside it), with a margin for jitter, merged where they overlap. Run it again with the zones saved: it
should find nothing. A false item that rides with the belt (a cleat, a stain, a joint) gets no zone: it
would turn up wherever the belt carries it, and a zone over its path would hide the belt; only a detector
that knows it can drop it. A track rides when a straight motion fitted to its centres over time carries it
at least 0.05 of the frame, and further than its centres stray from that motion (a box on something that
stays put wanders to and fro: its fitted motion is short). A zone that still lies across a count line, or
over the path of a false item that rode with the belt (so on the belt), would hide real items: it is
reported but never saved.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from device.count_config import RegionConfig
from vision import Pipeline

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in 0-1 image coordinates


@dataclass(frozen=True)
class FalseItem:
    """A track on the empty belt: its id, the frames it was seen in and the 0-1 box around its box centres."""

    track_id: int
    frames: int
    centres: Box
    size: float  # median of its boxes' larger side, 0-1 of the frame's larger side
    travel: float = 0.0  # how far a straight motion fitted to its centres over time carries it, 0-1 of the frame
    stray: float = 0.0  # root-mean-square distance of its centres from that motion, 0-1 of the frame

    @property
    def rides_belt(self) -> bool:
        """Whether it travelled with the belt (a cleat, a stain) rather than staying put (a rail, a roller)."""
        return self.travel >= RIDES and self.travel >= self.stray


RIDES = 0.05  # 0-1 of the frame a false item's centre must end from where it started to be riding with the belt


@dataclass(frozen=True)
class SceneReport:
    """What a scene check found, in footage seconds and frames, and the ignore zones it proposes."""

    source: str
    seconds: float
    frames: int
    false_items: tuple[FalseItem, ...]
    counted: dict[str, dict[str, int]]
    zones: tuple[RegionConfig, ...]
    across_lines: tuple[str, ...] = ()  # names of proposed zones that a count line passes through
    on_belt: tuple[str, ...] = ()  # names of proposed zones over the path of a false item that rode with the belt

    @property
    def riders(self) -> tuple[FalseItem, ...]:
        """The false items that rode with the belt: no ignore zone can drop them."""
        return tuple(f for f in self.false_items if f.rides_belt)

    @property
    def safe_zones(self) -> tuple[RegionConfig, ...]:
        """The proposed zones no count line passes through and no rider's path meets: those may be saved."""
        return tuple(z for z in self.zones if z.name not in self.across_lines and z.name not in self.on_belt)

    @property
    def per_minute(self) -> float:
        """False items per minute of footage."""
        return 60.0 * len(self.false_items) / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "seconds": round(self.seconds, 2),
            "frames": self.frames,
            "false_items": len(self.false_items),
            "false_items_per_minute": round(self.per_minute, 2),
            "counted": self.counted,
            "tracks": [{"track_id": f.track_id, "frames": f.frames, "centres": [round(v, 4) for v in f.centres]} for f in self.false_items],
            "riding_the_belt": [f.track_id for f in self.riders],
            "ignore_zones": [z.model_dump(mode="json") for z in self.zones],
            "zones_across_a_line": list(self.across_lines),
            "zones_on_the_belt": list(self.on_belt),
        }


@dataclass
class _Sightings:
    frames: list[int] = field(default_factory=list)
    centres: list[tuple[float, float]] = field(default_factory=list)
    sizes: list[float] = field(default_factory=list)


def fitted_motion(frames: list[int], centres: list[tuple[float, float]]) -> tuple[float, float]:
    """(travel, stray) of a track: how far the least-squares straight motion of its centres (0-1) over its
    frames carries it, and the root-mean-square distance of the centres from that motion."""
    t = np.asarray(frames, np.float64)
    c = np.asarray(centres, np.float64)
    if len(t) < 2 or t[-1] == t[0]:
        return 0.0, 0.0
    design = np.stack([t, np.ones_like(t)], axis=1)
    coef = np.linalg.lstsq(design, c, rcond=None)[0]
    fit = design @ coef
    return float(np.hypot(*(fit[-1] - fit[0]))), float(np.sqrt(((c - fit) ** 2).sum(axis=1).mean()))


def propose_zones(items: Iterable[FalseItem], taken: Iterable[str] = (), margin: float = 0.02) -> tuple[RegionConfig, ...]:
    """One ignore zone (a 0-1 rectangle) per group of false items that stay put whose padded centre boxes
    overlap; the pad is ``margin`` or a quarter of the item's size, whichever is larger. Items that ride with
    the belt get none. Names ``scene-1``, ``scene-2``, … skip the names in ``taken``."""
    boxes: list[list[float]] = []
    for item in items:
        if item.rides_belt:
            continue
        pad = max(margin, item.size / 4)
        x1, y1, x2, y2 = item.centres
        boxes.append([max(0.0, x1 - pad), max(0.0, y1 - pad), min(1.0, x2 + pad), min(1.0, y2 + pad)])
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    used = set(taken)
    zones = []
    n = 0
    for x1, y1, x2, y2 in sorted(boxes, key=lambda b: (b[1], b[0])):
        n += 1
        while f"scene-{n}" in used:
            n += 1
        corners = [(round(x1, 4), round(y1, 4)), (round(x2, 4), round(y1, 4)), (round(x2, 4), round(y2, 4)), (round(x1, 4), round(y2, 4))]
        zones.append(RegionConfig(name=f"scene-{n}", polygon=corners))
    return tuple(zones)


def segment_meets_box(segment: tuple[float, float, float, float], box: Box) -> bool:
    """Whether the segment x1,y1,x2,y2 passes through the axis-aligned box (Liang-Barsky clipping)."""
    x1, y1, x2, y2 = segment
    dx, dy = x2 - x1, y2 - y1
    low, high = 0.0, 1.0
    for p, q in ((-dx, x1 - box[0]), (dx, box[2] - x1), (-dy, y1 - box[1]), (dy, box[3] - y1)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def check_scene(
    frames: Iterable[npt.NDArray[np.uint8]],
    pipeline: Pipeline,
    fps: float,
    seconds: float,
    source: str,
    min_frames: int = 3,
    taken: Iterable[str] = (),
    wall_clock: bool = False,
    lines: Iterable[tuple[float, float, float, float]] = (),
) -> SceneReport:
    """Run ``pipeline`` over ``frames`` (BGR, H×W×3) for ``seconds`` of footage — at ``fps`` for a file, or by
    the wall clock for a live camera — and report every track seen in ``min_frames`` frames or more; ``lines``
    (0-1 segments) are the count lines a proposed zone must not lie across."""
    from device.count import counts_by_direction

    seen: dict[int, _Sightings] = {}
    start = time.monotonic()
    n = 0
    limit = round(seconds * fps) if not wall_clock else None
    for frame in frames:
        h, w = frame.shape[:2]
        result = pipeline.process(frame)
        n += 1
        d = result.detections
        if d.tracker_id is not None and len(d):
            centres = (d.xyxy[:, :2] + d.xyxy[:, 2:]) / 2 / np.array([w, h], np.float32)
            sizes = (d.xyxy[:, 2:] - d.xyxy[:, :2]).max(axis=1) / max(w, h)
            for tid, (cx, cy), size in zip(d.tracker_id.tolist(), centres.tolist(), sizes.tolist(), strict=True):
                s = seen.setdefault(tid, _Sightings())
                s.frames.append(n)
                s.centres.append((cx, cy))
                s.sizes.append(size)
        if (limit is not None and n >= limit) or (wall_clock and time.monotonic() - start >= seconds):
            break
    checked = n / fps if not wall_clock else time.monotonic() - start
    items = []
    for tid, s in sorted(seen.items()):
        if len(s.centres) >= min_frames:
            xs, ys = [c[0] for c in s.centres], [c[1] for c in s.centres]
            box = (min(xs), min(ys), max(xs), max(ys))
            items.append(FalseItem(tid, len(s.centres), box, float(np.median(s.sizes)), *fitted_motion(s.frames, s.centres)))
    counted = counts_by_direction(pipeline.totals())
    zones = propose_zones(items, taken)
    segments = list(lines)
    across = tuple(z.name for z in zones if any(segment_meets_box(seg, _bounds(z)) for seg in segments))
    return SceneReport(source, checked, n, tuple(items), counted, zones, across, zones_on_belt(zones, items))


def zones_on_belt(zones: Iterable[RegionConfig], items: Iterable[FalseItem]) -> tuple[str, ...]:
    """Names of the ``zones`` that meet the box of centres of a false item that rode with the belt."""
    paths = [f.centres for f in items if f.rides_belt]
    return tuple(z.name for z in zones if any(_overlap(_bounds(z), path) for path in paths))


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _bounds(zone: RegionConfig) -> Box:
    xs, ys = [p[0] for p in zone.polygon], [p[1] for p in zone.polygon]
    return min(xs), min(ys), max(xs), max(ys)
