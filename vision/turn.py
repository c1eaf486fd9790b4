"""``BeltTurn``: a belt seen at a slant is turned upright before detection, by its count line's slant.

The detector learnt belts that run along the picture's axes; a camera mounted askew sees the belt at a slant,
where the detector takes the belt itself for an item and misses what rides on it. The count line is drawn
across the belt, so its slant from the nearest image axis is the belt's: each frame is turned by that angle
(about its centre, on a canvas large enough to hold it all) for the detector and the material classifier,
and boxes come back to the frame as the upright boxes around the turned ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from vision.counter import LineSpec
from vision.detections import FloatArray
from vision.geometry import Letterbox, letterbox_layout, pad_letterboxed
from vision.picture import Picture

MIN_DEGREES = 5.0  # a line within this of an image axis is taken as upright: the frame is not turned
MIN_ON_PICTURE = 0.4  # share of a box off-centre on the picture that keeps it (the rest in the turn's corners)


def line_slant(spec: LineSpec, width: int, height: int) -> float:
    """Degrees (-45..45) the line lies from its nearest image axis, in frame pixels; positive: clockwise on screen."""
    degrees = math.degrees(math.atan2((spec.y2 - spec.y1) * height, (spec.x2 - spec.x1) * width))
    return (degrees + 45.0) % 90.0 - 45.0


def turn_onto_canvas(
    width: int, height: int, degrees: float, canvas_side: Callable[[float], int] = math.ceil
) -> tuple[npt.NDArray[np.float64], tuple[int, int]]:
    """The affine map (2, 3) of a ``width`` x ``height`` picture turned by ``degrees`` (counterclockwise on screen)
    about its centre onto a canvas that holds it all, and that canvas's (width, height) px, each side of the
    turned picture's extent rounded by ``canvas_side``."""
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    c, s = abs(turn[0, 0]), abs(turn[0, 1])
    canvas = (canvas_side(width * c + height * s), canvas_side(width * s + height * c))
    turn[0, 2] += canvas[0] / 2 - width / 2
    turn[1, 2] += canvas[1] / 2 - height / 2
    return np.asarray(turn, np.float64), canvas


def _mapped(points: npt.NDArray[np.float64], affine: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(N, 2) points in px taken by the affine map (2, 3)."""
    return np.asarray(points @ affine[:, :2].T + affine[:, 2], np.float64)


class BeltTurn:
    """Turns frames of one size by the slant of ``line`` (when it is ``min_degrees`` or more) and maps boxes
    between the frame (W, H) and the turned canvas (W', H'); boxes are (N, 4) ``x1, y1, x2, y2`` px."""

    def __init__(self, line: LineSpec, min_degrees: float = MIN_DEGREES) -> None:
        self.line = line
        self.min_degrees = min_degrees
        self.degrees = 0.0
        self._frame_size: tuple[int, int] | None = None
        self._forward: npt.NDArray[np.float64] = np.eye(2, 3)
        self._back: npt.NDArray[np.float64] = np.eye(2, 3)
        self._picture: npt.NDArray[np.float32] = np.zeros((4, 2), np.float32)  # the frame's corners on the canvas, px
        self.canvas = (0, 0)

    def prepare(self, width: int, height: int) -> bool:
        """Set the turn up for frames of ``width`` x ``height`` px; whether frames of that size are turned."""
        if self._frame_size != (width, height):
            self._frame_size = (width, height)
            slant = line_slant(self.line, width, height)
            self.degrees = slant if abs(slant) >= self.min_degrees else 0.0
            self._forward, self.canvas = turn_onto_canvas(width, height, self.degrees)
            self._back = np.asarray(cv2.invertAffineTransform(self._forward), np.float64)
            corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
            self._picture = _mapped(corners, self._forward).astype(np.float32)
        return self.degrees != 0.0

    def apply(self, frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The frame (H, W, 3) turned upright onto the canvas (H', W', 3), its edges carried out to the corners."""
        h, w = frame.shape[:2]
        self.prepare(w, h)
        return np.asarray(cv2.warpAffine(frame, self._forward, self.canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))

    def letterboxed(self, frame: npt.NDArray[np.uint8], size: tuple[int, int], stride: int = 0) -> tuple[npt.NDArray[np.uint8], Letterbox]:
        """The turned canvas as ``vision.geometry.letterbox`` fits it to ``size`` (height, width) px (``stride``:
        see there), warped from the frame (H, W, 3) straight to the input's scale: the canvas itself is not made."""
        h, w = frame.shape[:2]
        self.prepare(w, h)
        (nw, nh), padded, box = letterbox_layout(self.canvas[0], self.canvas[1], size, stride)
        sx, sy = nw / self.canvas[0], nh / self.canvas[1]
        scale = np.diag([sx, sy])
        # as cv2.resize scales a picture: pixel centres, not corners, keep their place
        to_input = np.hstack([scale @ self._forward[:, :2], (scale @ self._forward[:, 2] + 0.5 * np.array([sx - 1, sy - 1]))[:, None]])
        resized = cv2.warpAffine(frame, to_input, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return pad_letterboxed(np.asarray(resized, np.uint8), padded, box), box

    def picture(self, frame: npt.NDArray[np.uint8]) -> Picture:
        """The turned canvas of ``frame`` (H, W, 3), made only if its pixels are asked for (a crop to classify)."""
        h, w = frame.shape[:2]
        self.prepare(w, h)
        return Picture(self.canvas[0], self.canvas[1], lambda: self.apply(frame))

    def on_picture(self, xyxy: FloatArray) -> npt.NDArray[np.bool_]:
        """Whether each box on the canvas (N, 4) lies on the frame's own picture — its centre there, or 0.4 of its
        area (an item at the frame's edge whose box runs on into the streaks) — rather than in the corners the turn
        adds, where the frame's edges are carried out as streaks the detector may box."""
        if self._frame_size is None or len(xyxy) == 0:
            return np.ones(len(xyxy), bool)
        boxes = np.asarray(xyxy, np.float64)
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        in_frame = _mapped(centres, self._back)
        w, h = self._frame_size
        centred = (in_frame[:, 0] >= 0) & (in_frame[:, 0] <= w) & (in_frame[:, 1] >= 0) & (in_frame[:, 1] <= h)
        share = np.zeros(len(boxes))
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            area = (x2 - x1) * (y2 - y1)
            if area > 0 and not centred[i]:
                inside, _ = cv2.intersectConvexConvex(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32), self._picture)
                share[i] = float(inside) / area
        return np.asarray(centred | (share >= MIN_ON_PICTURE), bool)

    def to_frame(self, xyxy: FloatArray) -> FloatArray:
        """Boxes on the canvas → the upright boxes around them in the frame, clipped to it."""
        if self._frame_size is None or len(xyxy) == 0:
            return np.asarray(xyxy, np.float32)
        corners = np.asarray(xyxy, np.float64)[:, [0, 1, 2, 1, 0, 3, 2, 3]].reshape(-1, 2)  # (4N, 2): each box's corners
        points = _mapped(corners, self._back).reshape(-1, 4, 2)
        w, h = self._frame_size
        out = np.clip(np.hstack([points.min(axis=1), points.max(axis=1)]), 0, [w, h, w, h])
        return np.asarray(out, np.float32)
