"""``Camera``: how a tilted camera with a wide lens sees a flat belt — a homography from the belt plane (a
canvas, px) to the image, then barrel distortion. Used to render belts as real cameras see them."""

from __future__ import annotations

import cv2
import numpy as np


class Camera:
    """Belt plane (a canvas of ``canvas_w`` x ``canvas_h`` px) → image (``width`` x ``height`` px): a homography
    from a tilt, then barrel distortion. The image's top edge is the far side and sees the whole canvas width;
    its bottom edge sees the middle ``width`` px (``tilt`` 0.5: the far edge sees 1.5x as much belt).
    ``distortion`` is the barrel term (0: a pinhole). ``to_image`` maps points, ``render`` a whole canvas."""

    def __init__(self, width: int, height: int, tilt: float, distortion: float) -> None:
        self.width, self.height, self.k = width, height, distortion
        self.canvas_w = round(width * (1 + tilt))
        self.canvas_h = round(height * (1 + tilt / 2))
        margin = (self.canvas_w - width) / 2
        canvas = np.float32([[0, 0], [self.canvas_w, 0], [self.canvas_w - margin, self.canvas_h], [margin, self.canvas_h]])
        image = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
        self.homography = cv2.getPerspectiveTransform(canvas, image)
        self.inverse = np.linalg.inv(self.homography)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        qx, qy = self._undistort(xs, ys)
        self.map_x, self.map_y = qx.astype(np.float32), qy.astype(np.float32)

    def _undistort(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where in the ideal (pinhole) image the distorted image's pixel (x, y) looks."""
        cx, cy = self.width / 2, self.height / 2
        r2 = ((x - cx) ** 2 + (y - cy) ** 2) / (cx**2 + cy**2)
        f = (1 + self.k * r2) / (1 + self.k)
        return cx + (x - cx) * f, cy + (y - cy) * f

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Canvas points (N, 2) → distorted image points (N, 2), px."""
        ideal = cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), self.homography).reshape(-1, 2)
        out = ideal.copy()
        for _ in range(20):  # invert _undistort by fixed-point iteration (it moves points by a few px)
            qx, qy = self._undistort(out[:, 0], out[:, 1])
            out[:, 0] += ideal[:, 0] - qx
            out[:, 1] += ideal[:, 1] - qy
        return out

    def to_canvas(self, points: np.ndarray) -> np.ndarray:
        """Ideal image points (N, 2) → canvas points (N, 2) (ignores the lens: for laying items out)."""
        return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), self.inverse).reshape(-1, 2)

    def render(self, canvas: np.ndarray, outside: float | None = None) -> np.ndarray:
        """The image of ``canvas`` (canvas_h x canvas_w [x C]); beyond the canvas: its edge repeated, or ``outside``."""
        border = cv2.BORDER_REPLICATE if outside is None else cv2.BORDER_CONSTANT
        value = 0.0 if outside is None else outside
        ideal = cv2.warpPerspective(
            canvas, self.homography, (self.width, self.height), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=value
        )
        return cv2.remap(ideal, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=border, borderValue=value)
