"""Polygons on the picture: privacy masks (pixels blacked out before any image leaves the counting loop)
and ignore zones (detections whose centre lies inside are dropped before tracking).

Polygons are in normalised 0-1 image coordinates, ``((x, y), ...)`` with at least three points.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from vision.detections import Detections
from vision.errors import LineError

Polygon = tuple[tuple[float, float], ...]


def _checked(polygons: Sequence[Sequence[tuple[float, float]]], what: str) -> tuple[Polygon, ...]:
    out: list[Polygon] = []
    for k, poly in enumerate(polygons):
        pts = tuple((float(x), float(y)) for x, y in poly)
        if len(pts) < 3 or not all(np.isfinite(v) and -0.0001 <= v <= 1.0001 for p in pts for v in p):
            raise LineError(f"{what} {k}: needs at least 3 points with 0-1 coordinates, got {list(pts)}")
        out.append(pts)
    return tuple(out)


def _pixels(poly: Polygon, width: int, height: int) -> npt.NDArray[np.int32]:
    return np.round(np.asarray(poly, np.float64) * [width, height]).astype(np.int32)


class PrivacyMask:
    """Blacks out polygons of a frame. The pixel mask is built once per frame size.

    Example:
        >>> mask = PrivacyMask([((0, 0), (0.5, 0), (0.5, 0.5))])
        >>> safe = mask.apply(frame)  # doctest: +SKIP
    """

    def __init__(self, polygons: Sequence[Sequence[tuple[float, float]]] = ()) -> None:
        self.polygons = _checked(polygons, "privacy mask")
        self._cache: tuple[tuple[int, int], npt.NDArray[np.bool_]] | None = None

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def pixels(self, width: int, height: int) -> npt.NDArray[np.bool_]:
        """(H, W) bool: True where a pixel is masked (polygon edges included)."""
        if self._cache is None or self._cache[0] != (width, height):
            canvas = np.zeros((height, width), np.uint8)
            for poly in self.polygons:
                cv2.fillPoly(canvas, [_pixels(poly, width, height)], 255)
                cv2.polylines(canvas, [_pixels(poly, width, height)], True, 255, 2)
            self._cache = ((width, height), canvas.astype(bool))
        return self._cache[1]

    def apply(self, frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """A copy of the BGR ``frame`` (H, W, 3) with every masked pixel black; ``frame`` itself when there is no mask."""
        if not self.polygons:
            return frame
        out = frame.copy()
        out[self.pixels(frame.shape[1], frame.shape[0])] = 0
        return out


class IgnoreZones:
    """Drops detections whose box centre lies inside any polygon (a reflection, a person's hands, a sign)."""

    def __init__(self, polygons: Sequence[Sequence[tuple[float, float]]] = ()) -> None:
        self.polygons = _checked(polygons, "ignore zone")

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def inside(self, points: npt.NDArray[np.floating], width: int, height: int) -> npt.NDArray[np.bool_]:
        """(N,) bool: whether each (N, 2) pixel point lies inside any polygon (boundary counts as inside)."""
        hit = np.zeros(len(points), bool)
        for poly in self.polygons:
            contour = (np.asarray(poly, np.float64) * [width, height]).astype(np.float32).reshape(-1, 1, 2)
            for i, (x, y) in enumerate(points.tolist()):
                if not hit[i] and cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0:
                    hit[i] = True
        return hit

    def filter(self, detections: Detections, width: int, height: int) -> Detections:
        """The detections whose centre is outside every ignore zone (all of them when there is none)."""
        if not self.polygons or len(detections) == 0:
            return detections
        return detections[~self.inside(detections.anchors("center"), width, height)]
