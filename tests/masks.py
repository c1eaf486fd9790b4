"""A known pattern and a privacy mask over part of it, and the check that no masked pixel survived."""

from __future__ import annotations

import cv2
import numpy as np

MASK = [[0.0, 0.625], [0.375, 0.625], [0.375, 1.0], [0.0, 1.0]]  # the bottom-left 48 x 36 px of a 128 x 96 frame


def pattern(size: tuple[int, int] = (128, 96)) -> np.ndarray:
    """A checkerboard every channel of which stays below the blob model's threshold."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((xx // 4 + yy // 4) % 2).astype(bool)
    image = np.zeros((h, w, 3), np.uint8)
    image[board] = (100, 20, 100)
    image[~board] = (20, 100, 20)
    return image


def masked_area_is_black(jpeg: bytes | np.ndarray) -> None:
    """``jpeg`` (or a decoded BGR/RGB image): nothing of the pattern inside MASK, the pattern outside it."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) if isinstance(jpeg, bytes) else jpeg
    assert image is not None
    h, w = image.shape[:2]
    inside = image[int(0.667 * h) : int(0.98 * h), int(0.02 * w) : int(0.34 * w)]  # less a margin for JPEG's blocks at the edge
    outside = image[int(0.667 * h) :, int(0.62 * w) :]
    assert int(inside.max()) <= 24, f"masked pixels survived (max {int(inside.max())})"
    assert float(outside.std()) > 15, "the unmasked picture should keep its pattern"
