"""Over-the-air model updates: poll the assigned model, download, verify, test, hand over for a swap.

The item detector and the material classifier are updated on their own (``/devices/{id}/model`` and
``/devices/{id}/classifier``), each by its own ``ModelUpdater``. A file is taken only when its sha256
matches, it loads (``OnnxDetector`` / ``Classifier``), its classes equal the running model's, and it gives
sane output on a stored reference frame (a detector: finite boxes and scores; a classifier: finite
probabilities that sum to 1 on a crop of it); otherwise it is refused, the reason is reported in the
heartbeat, and the running model keeps counting. The previous sha256 is kept beside the new file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from device.sources import Frame
from vision import Classifier, DetectorSettings, ModelError, OnnxDetector, crop_square

log = logging.getLogger("farz.models")
M = TypeVar("M", OnnxDetector, Classifier)


@dataclass(frozen=True)
class ModelKind(Generic[M]):
    """How one kind of model is fetched, loaded and tested: the server path, a loader, a reference check."""

    name: str  # "detector" | "classifier", for logs and the heartbeat
    endpoint: str  # "model" | "classifier": GET /api/v1/devices/{id}/<endpoint>
    load: Callable[[Path], M]
    names: Callable[[M], tuple[str, ...]]
    check: Callable[[M, Frame], str | None]  # None when the output on the reference frame is sane, else why not


def _check_detector(detector: OnnxDetector, frame: Frame) -> str | None:
    dets = detector(frame)
    if not np.isfinite(dets.xyxy).all() or not np.isfinite(dets.confidence).all():
        return "non-finite output on the reference frame"
    return None


def _check_classifier(classifier: Classifier, frame: Frame) -> str | None:
    h, w = frame.shape[:2]
    p = classifier.predict(crop_square(frame, (w / 4, h / 4, 3 * w / 4, 3 * h / 4), classifier.imgsz)[None])
    if p.shape != (1, len(classifier.names)) or not np.isfinite(p).all() or abs(float(p.sum()) - 1.0) > 1e-3:
        return f"output on a reference crop is not a probability per class: {np.round(p, 3).tolist()}"
    return None


def detector_kind(settings: DetectorSettings) -> ModelKind[OnnxDetector]:
    """Detectors, loaded with the running detector's settings."""
    return ModelKind("detector", "model", lambda p: OnnxDetector(p, settings), lambda d: d.names, _check_detector)


def classifier_kind(threads: int = 0) -> ModelKind[Classifier]:
    """Material classifiers."""
    return ModelKind("classifier", "classifier", lambda p: Classifier(p, threads=threads), lambda c: c.names, _check_classifier)


class ModelUpdater(Generic[M]):
    """Background poller; ``take_ready()`` returns a verified model once, for the counting loop to swap in."""

    def __init__(
        self,
        server_url: str,
        device_id: str,
        token: str | None,
        folder: Path,
        current: M,
        kind: ModelKind[M],
        reference: Callable[[], Frame | None],
        interval_s: float = 60.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.base = server_url.rstrip("/")
        self.device_id = device_id
        self.token = token
        self.folder = folder
        self.kind: ModelKind[M] = kind
        self.current_sha = current.info.sha256
        self.current_names = kind.names(current)
        self.reference = reference
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.status: dict[str, object] = {"status": "running", "sha256": self.current_sha}
        self._refused: set[str] = set()
        self._ready: M | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.kind.name}-updater", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s)

    def take_ready(self) -> M | None:
        with self._lock:
            ready, self._ready = self._ready, None
        return ready

    def _get(self, url: str) -> bytes:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"} if self.token else {})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return bytes(response.read())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
            except (urllib.error.URLError, OSError, ValueError) as exc:
                log.debug("%s check failed: %s", self.kind.name, exc)
            self._stop.wait(self.interval_s)

    def check_once(self) -> str:
        """Look for a newly assigned model; returns what happened (for logs and tests)."""
        assigned = json.loads(self._get(f"{self.base}/api/v1/devices/{self.device_id}/{self.kind.endpoint}") or b"null")
        if not assigned:
            return "none assigned"
        sha = str(assigned["sha256"])
        if sha == self.current_sha or sha in self._refused:
            return "unchanged"
        path = self.folder / f"{sha}.onnx"
        data = self._get(str(assigned["url"]))
        if hashlib.sha256(data).hexdigest() != sha:
            return self._refuse(sha, "downloaded bytes do not match the sha256")
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(path)
        try:
            model = self.kind.load(path)
        except ModelError as exc:
            return self._refuse(sha, f"does not load: {exc.problem}")
        names = self.kind.names(model)
        if names != self.current_names:
            return self._refuse(sha, f"classes {list(names)} differ from the running {self.kind.name}'s {list(self.current_names)}")
        frame = self.reference()
        if frame is not None:
            try:
                problem = self.kind.check(model, frame)
            except Exception as exc:
                problem = f"fails on the reference frame: {type(exc).__name__}: {exc}"
            if problem is not None:
                return self._refuse(sha, problem)
        with self._lock:
            self._ready = model
        (self.folder / f"previous-{self.kind.name}.txt").write_text(self.current_sha + "\n")
        self.current_sha = sha
        self.status = {"status": "running", "sha256": sha, "name": assigned.get("name")}
        log.info("%s %s (%s) verified; swapping it in between frames", self.kind.name, assigned.get("name"), sha[:12])
        return "ready"

    def _refuse(self, sha: str, reason: str) -> str:
        self._refused.add(sha)
        (self.folder / f"{sha}.onnx").unlink(missing_ok=True)
        self.status = {"status": "refused", "sha256": sha, "reason": reason, "running": self.current_sha}
        log.error("assigned %s %s refused: %s; the running %s keeps counting", self.kind.name, sha[:12], reason, self.kind.name)
        return "refused"
