"""``Detections``: one frame's detections as parallel numpy arrays (supervision field names)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

# Anchor points as linear maps of xyxy (exact in float32): ``xyxy @ MAP`` → (N, 2).
_ANCHOR_MAPS = {
    "center": np.array([[0.5, 0], [0, 0.5], [0.5, 0], [0, 0.5]], np.float32),
    "bottom_center": np.array([[0.5, 0], [0, 0], [0.5, 0], [0, 1]], np.float32),
}


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections of one frame; stages return new objects and never mutate.

    Attributes:
        xyxy: (N, 4) float32 boxes ``x1, y1, x2, y2`` in source-frame pixels.
        confidence: (N,) float32 scores in 0..1.
        class_id: (N,) int64 class indices into the model's ``names``.
        tracker_id: (N,) int64 track ids, or None before tracking.

    Example:
        >>> d = Detections(np.zeros((1, 4), np.float32), np.ones(1, np.float32), np.zeros(1, np.int64))
        >>> len(d)
        1
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    tracker_id: IntArray | None = None

    def __post_init__(self) -> None:
        n = self.xyxy.shape[0]
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        if self.confidence.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(f"confidence and class_id must have shape ({n},), got {self.confidence.shape} and {self.class_id.shape}")
        if self.tracker_id is not None and self.tracker_id.shape != (n,):
            raise ValueError(f"tracker_id must have shape ({n},), got {self.tracker_id.shape}")
        for array in (self.xyxy, self.confidence, self.class_id, self.tracker_id):
            if array is not None:
                array.flags.writeable = False

    @staticmethod
    def empty() -> Detections:
        """No detections."""
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64] | slice) -> Detections:
        """The subset selected by a boolean mask, an index array or a slice (read-only, like every field)."""
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            None if self.tracker_id is None else self.tracker_id[index],
        )

    def with_tracks(self, tracker_id: IntArray, class_id: IntArray | None = None) -> Detections:
        """A copy with ``tracker_id`` set (and ``class_id`` replaced, e.g. by a track's voted class)."""
        classes = self.class_id if class_id is None else class_id.astype(np.int64, copy=False)
        return Detections(self.xyxy, self.confidence, classes, tracker_id.astype(np.int64, copy=False))

    def anchors(self, anchor: str = "center") -> FloatArray:
        """(N, 2) anchor points in pixels: ``center`` or ``bottom_center`` of each box."""
        if anchor not in _ANCHOR_MAPS:
            raise ValueError(f"unknown anchor {anchor!r}: use 'center' or 'bottom_center'")
        return np.asarray(self.xyxy.astype(np.float32, copy=False) @ _ANCHOR_MAPS[anchor], np.float32)
