"""Live frame sources: Raspberry Pi camera (picamera2), USB/V4L2 and RTSP/HTTP streams (OpenCV).

A capture thread reads as fast as the camera delivers and keeps only the newest frames: when counting
falls behind, the oldest frame is dropped and the drop is counted. A camera that disappears or a
stream that stalls (a read fails or times out) is reopened with exponential backoff, and the gap
(seconds without frames) is recorded and logged.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from device.sources import Frame

log = logging.getLogger("farz.source")


class Capture(Protocol):
    """What a camera or stream handle must offer (``cv2.VideoCapture`` has it)."""

    def read(self) -> tuple[bool, Frame | None]: ...

    def release(self) -> None: ...


@dataclass
class SourceHealth:
    """Counters a live source keeps for heartbeats: frames read, frames dropped, reconnects, gaps (s)."""

    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    gaps: list[float] = field(default_factory=list)
    connected: bool = False


class LiveSource:
    """Iterate the newest frames of a live camera or stream, reconnecting when it fails.

    Args:
        opener: opens the device and returns a ``Capture``; raises or returns a handle whose first
            read fails when the device is not there.
        name: for logs.
        buffer: frames kept waiting for the consumer; older ones are dropped (counted).
        max_backoff_s: the longest pause between reconnect attempts.
    """

    def __init__(self, opener: Callable[[], Capture], name: str, buffer: int = 1, max_backoff_s: float = 30.0) -> None:
        self.opener = opener
        self.name = name
        self.health = SourceHealth()
        self.max_backoff_s = max_backoff_s
        self._frames: collections.deque[Frame] = collections.deque(maxlen=buffer)
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._capture, name=f"capture:{self.name}", daemon=True)
        self._thread.start()

    def _open(self) -> Capture | None:
        try:
            return self.opener()
        except Exception as exc:
            log.debug("opening %s failed: %s", self.name, exc)
            return None

    def _capture(self) -> None:
        cap: Capture | None = None
        gap_start: float | None = None
        attempt = 0
        while not self._stop.is_set():
            if cap is None:
                cap = self._open()
                if cap is None:
                    gap_start = gap_start or time.monotonic()
                    attempt += 1
                    self._stop.wait(min(self.max_backoff_s, 0.2 * 2 ** min(attempt, 8)))
                    continue
            ok, frame = cap.read()
            if not ok or frame is None:
                cap.release()
                cap = None
                if gap_start is None:
                    gap_start = time.monotonic()
                    log.warning("%s stopped delivering frames; reconnecting", self.name)
                self.health.connected = False
                continue
            if gap_start is not None:
                gap = time.monotonic() - gap_start
                if self.health.frames:
                    self.health.reconnects += 1
                    self.health.gaps.append(round(gap, 3))
                    log.warning("%s is back after a gap of %.1f s", self.name, gap)
                gap_start = None
            attempt = 0
            self.health.connected = True
            self.health.frames += 1
            with self._ready:
                if len(self._frames) == self._frames.maxlen:
                    self.health.dropped += 1
                self._frames.append(frame)
                self._ready.notify()
        if cap is not None:
            cap.release()

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is None:
            self.start()
        while not self._stop.is_set():
            with self._ready:
                if not self._frames:
                    self._ready.wait(timeout=0.5)
                if not self._frames:
                    continue
                frame = self._frames.popleft()
            yield frame

    def close(self) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)


class OpenCVCapture:
    """``cv2.VideoCapture`` seen through the ``Capture`` interface."""

    def __init__(self, cap: cv2.VideoCapture) -> None:
        self.cap = cap

    def read(self) -> tuple[bool, Frame | None]:
        ok, frame = self.cap.read()
        return (True, np.asarray(frame, dtype=np.uint8)) if ok and frame is not None else (False, None)

    def release(self) -> None:
        self.cap.release()


def opencv_opener(target: str | int, timeout_ms: int = 5000) -> Callable[[], Capture]:
    """Opener for a USB camera index or an RTSP/HTTP URL; reads time out after ``timeout_ms``."""

    def open_capture() -> Capture:
        if isinstance(target, int):
            cap = cv2.VideoCapture(target)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise OSError(f"cannot open {target}")
        return OpenCVCapture(cap)

    return open_capture


class PiCameraCapture:
    """A Raspberry Pi camera through picamera2 (imported here, only when a Pi camera is used)."""

    def __init__(self, index: int = 0, size: tuple[int, int] = (1280, 720)) -> None:
        from picamera2 import Picamera2

        self.camera = Picamera2(index)
        config = self.camera.create_video_configuration(main={"size": size, "format": "RGB888"})
        self.camera.configure(config)
        self.camera.start()

    def read(self) -> tuple[bool, Frame | None]:
        try:
            array = self.camera.capture_array("main")
        except Exception:
            return False, None
        frame = np.ascontiguousarray(array[..., :3], dtype=np.uint8)  # picamera2's RGB888 is B, G, R in memory
        return True, frame

    def release(self) -> None:
        try:
            self.camera.stop()
            self.camera.close()
        except Exception:
            log.debug("closing the Pi camera failed", exc_info=True)


def open_live_source(spec: str) -> LiveSource:
    """``picamera[:N]``, ``usb:N`` or an ``rtsp://``/``http(s)://`` URL → a started LiveSource."""
    if spec.startswith("picamera"):
        index = int(spec.split(":", 1)[1]) if ":" in spec else 0
        source = LiveSource(lambda: PiCameraCapture(index), spec)
    elif spec.startswith("usb:"):
        source = LiveSource(opencv_opener(int(spec[4:])), spec)
    else:
        source = LiveSource(opencv_opener(spec), spec.rsplit("@", maxsplit=1)[-1])  # never log credentials in a URL
    source.start()
    return source
