"""Frame sources. ``VideoFileSource`` decodes in its own thread so decoding overlaps inference."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]


class SourceError(OSError):
    """A video or camera cannot be opened or read; the message says which and why."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself: size px, frames per second, frame count (0 if unknown)."""

    width: int
    height: int
    fps: float
    frame_count: int


def probe_video(path: Path) -> VideoInfo:
    """Open ``path`` just long enough to read its size, fps and length; raises SourceError."""
    if not path.is_file():
        raise SourceError(f"{path}: video file not found")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise SourceError(f"{path}: not a readable video (OpenCV cannot open it)")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise SourceError(f"{path}: the video has no decodable frames")
        fps = cap.get(cv2.CAP_PROP_FPS)
        return VideoInfo(frame.shape[1], frame.shape[0], fps if 0 < fps < 1000 else 30.0, max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))))
    finally:
        cap.release()


_END = object()


class VideoFileSource:
    """Iterate the frames (H, W, 3 BGR uint8) of a video file, decoded ahead by a reader thread.

    File replay never drops frames: the reader blocks when ``prefetch`` frames are waiting.
    ``start_frame`` skips that many frames first (resuming a replay).
    """

    def __init__(self, path: Path, prefetch: int = 8, start_frame: int = 0) -> None:
        self.path = path
        self.info = probe_video(path)
        self.start_frame = start_frame
        self._queue: queue.Queue[object] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def _read(self) -> None:
        cap = cv2.VideoCapture(str(self.path))
        try:
            for _ in range(self.start_frame):
                if not cap.grab():
                    break
            while not self._stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    break
                while not self._stop.is_set():
                    try:
                        self._queue.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except Exception as exc:
            self.error = exc
        finally:
            cap.release()
            while True:
                try:
                    self._queue.put(_END, timeout=0.1)
                    break
                except queue.Full:
                    if self._stop.is_set():
                        break

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name=f"decode:{self.path.name}", daemon=True)
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                if self.error is not None:
                    raise SourceError(f"{self.path}: decoding failed ({self.error})")
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop the reader thread."""
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    self._thread.join(timeout=0.05)

    def __enter__(self) -> VideoFileSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
