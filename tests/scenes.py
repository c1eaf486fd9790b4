"""Synthetic trajectories for tracker and counter tests: objects as boxes moving frame by frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision import Detections


@dataclass(frozen=True)
class Mover:
    """An object of size ``size`` px moving from ``start`` at ``velocity`` px/frame, visible in ``frames``."""

    start: tuple[float, float]
    velocity: tuple[float, float]
    class_id: int = 0
    size: float = 40.0
    first: int = 0
    last: int = 10**9
    hidden: tuple[int, ...] = ()
    confidence: float = 0.9

    def center(self, f: int) -> tuple[float, float]:
        return self.start[0] + self.velocity[0] * (f - self.first), self.start[1] + self.velocity[1] * (f - self.first)

    def visible(self, f: int) -> bool:
        return self.first <= f <= self.last and f not in self.hidden


def frame_detections(movers: list[Mover], f: int, class_of: dict[int, int] | None = None) -> tuple[Detections, list[int]]:
    """Detections of frame ``f`` and, in the same order, the index of the mover each came from."""
    boxes, conf, cls, who = [], [], [], []
    for k, m in enumerate(movers):
        if m.visible(f):
            cx, cy = m.center(f)
            s = m.size / 2
            boxes.append([cx - s, cy - s, cx + s, cy + s])
            conf.append(m.confidence)
            cls.append((class_of or {}).get(k, m.class_id))
            who.append(k)
    if not boxes:
        return Detections.empty(), []
    return Detections(np.array(boxes, np.float32), np.array(conf, np.float32), np.array(cls, np.int64)), who
