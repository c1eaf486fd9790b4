"""``Picture``: a frame the classifier may crop from, made only if a crop is taken.

A belt seen at a slant is turned upright for the detector and the classifier (``vision.turn``); the detector
reads a small turned copy, and the whole turned frame is needed only on the few frames where a track is
classified. A ``Picture`` carries that frame's size and makes its pixels on first use, once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

Pixels = npt.NDArray[np.uint8]


class Picture:
    """A BGR picture (H, W, 3) of ``width`` x ``height`` px whose pixels ``make`` returns when first asked for."""

    def __init__(self, width: int, height: int, make: Callable[[], Pixels]) -> None:
        self.width = width
        self.height = height
        self._make: Callable[[], Pixels] | None = make
        self._pixels: Pixels | None = None

    @classmethod
    def of(cls, frame: Pixels) -> Picture:
        """A picture of pixels already at hand."""
        picture = cls(frame.shape[1], frame.shape[0], lambda: frame)
        picture._pixels, picture._make = frame, None
        return picture

    @property
    def made(self) -> bool:
        """Whether the pixels exist yet."""
        return self._pixels is not None

    def pixels(self) -> Pixels:
        """The picture (H, W, 3), made now if it was not yet."""
        if self._pixels is None:
            assert self._make is not None
            self._pixels, self._make = self._make(), None
            if self._pixels.shape[:2] != (self.height, self.width):
                raise ValueError(f"made a picture of {self._pixels.shape[1::-1]} px, promised {(self.width, self.height)}")
        return self._pixels


def as_picture(frame: Pixels | Picture) -> Picture:
    """``frame`` as a ``Picture`` (an array is wrapped, a picture kept)."""
    return frame if isinstance(frame, Picture) else Picture.of(frame)
