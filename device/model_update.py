"""Over-the-air model updates: poll the assigned model, download, verify, test, hand over for a swap.

A model is taken only when its sha256 matches, it loads in ``OnnxDetector``, its classes equal the
running model's, and it gives sane output on a stored reference frame; otherwise it is refused and the
reason is reported in the heartbeat, and the running model keeps counting. The previous model file is
kept beside the new one for rollback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from device.sources import Frame
from vision import DetectorSettings, ModelError, OnnxDetector

log = logging.getLogger("farz.models")


class ModelUpdater:
    """Background poller; ``take_ready()`` returns a verified detector once, for the counting loop to swap in."""

    def __init__(
        self,
        server_url: str,
        device_id: str,
        token: str | None,
        folder: Path,
        current: OnnxDetector,
        settings: DetectorSettings,
        reference: Callable[[], Frame | None],
        interval_s: float = 60.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.base = server_url.rstrip("/")
        self.device_id = device_id
        self.token = token
        self.folder = folder
        self.current_sha = current.info.sha256
        self.current_names = current.names
        self.settings = settings
        self.reference = reference
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.status: dict[str, object] = {"status": "running", "sha256": self.current_sha}
        self._refused: set[str] = set()
        self._ready: OnnxDetector | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-updater", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s)

    def take_ready(self) -> OnnxDetector | None:
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
                log.debug("model check failed: %s", exc)
            self._stop.wait(self.interval_s)

    def check_once(self) -> str:
        """Look for a newly assigned model; returns what happened (for logs and tests)."""
        assigned = json.loads(self._get(f"{self.base}/api/v1/devices/{self.device_id}/model") or b"null")
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
            detector = OnnxDetector(path, self.settings)
        except ModelError as exc:
            return self._refuse(sha, f"does not load: {exc.problem}")
        if detector.names != self.current_names:
            return self._refuse(sha, f"classes {list(detector.names)} differ from the running model's {list(self.current_names)}")
        frame = self.reference()
        if frame is not None:
            try:
                dets = detector(frame)
            except Exception as exc:
                return self._refuse(sha, f"fails on the reference frame: {type(exc).__name__}: {exc}")
            if not np.isfinite(dets.xyxy).all() or not np.isfinite(dets.confidence).all():
                return self._refuse(sha, "non-finite output on the reference frame")
        with self._lock:
            self._ready = detector
        (self.folder / "previous.txt").write_text(self.current_sha + "\n")
        self.current_sha = sha
        self.status = {"status": "running", "sha256": sha, "name": assigned.get("name")}
        log.info("model %s (%s) verified; swapping it in between frames", assigned.get("name"), sha[:12])
        return "ready"

    def _refuse(self, sha: str, reason: str) -> str:
        self._refused.add(sha)
        (self.folder / f"{sha}.onnx").unlink(missing_ok=True)
        self.status = {"status": "refused", "sha256": sha, "reason": reason, "running": self.current_sha}
        log.error("assigned model %s refused: %s; the running model keeps counting", sha[:12], reason)
        return "refused"
