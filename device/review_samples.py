"""Review samples: counted tracks kept for people to name their material.

While a track is on the belt, the crops the material classifier saw of it (at most ``crops_per_track``)
are held in memory, cut at their native size with the privacy mask already applied. When the track is
counted it is kept for review if it is one of the ``sample_rate`` share drawn at random (``random``: the
fair sample the server's trust figures are estimated from) or, failing that, if its voted probabilities
are unsure (``unsure``). A kept item is ``<id>.json`` (the voted probabilities, the counted class, the
line, the time and both model ids) plus ``<id>-c<k>.jpg`` in ``folder``; at most ``max_items``, the
oldest unsure ones dropped first, then the oldest random ones. The uploader sends them when no counts wait.
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from vision import Classified, CountEvent, MaterialSettings, PrivacyMask
from vision.classifier import CROP_MARGIN, crop_square


@dataclass(frozen=True)
class ReviewRules:
    """Which counted tracks are kept, and how much of them."""

    sample_rate: float = 0.05  # share of counted tracks kept at random
    max_items: int = 500  # items on disk; the oldest go first
    crops_per_track: int = 3
    max_side: int = 320  # px: a larger crop is scaled down to this side
    jpeg_quality: int = 90
    forget_after: int = 300  # frames a track's crops are held after it was last classified


@dataclass
class _Held:
    crops: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    probabilities: list[npt.NDArray[np.float32]] = field(default_factory=list)
    last_frame: int = 0


class ReviewKeeper:
    """Keeps counted tracks for review. Per frame: ``observe`` the crops classified, then ``counted`` the events."""

    endpoint = "/api/v1/reviews"

    def __init__(
        self,
        folder: Path,
        names: tuple[str, ...],
        detector_id: str,
        classifier_id: str,
        material: MaterialSettings,
        rules: ReviewRules | None = None,
        mask: PrivacyMask | None = None,
        seed: int | None = None,
    ) -> None:
        self.folder = folder
        self.names = names
        self.detector_id = detector_id
        self.classifier_id = classifier_id
        self.material = material
        self.rules = rules or ReviewRules()
        self.mask = mask or PrivacyMask()
        self._rng = random.Random(seed)
        self._held: dict[int, _Held] = {}
        self._kept: set[int] = set()  # tracks already decided (a track crossing two lines is kept once)
        self.kept = {"random": 0, "unsure": 0}
        folder.mkdir(parents=True, exist_ok=True)

    def reset(self) -> None:
        """Forget the tracks held in memory (a new video, a new model)."""
        self._held.clear()
        self._kept.clear()

    def observe(self, frame: npt.NDArray[np.uint8], classified: tuple[Classified, ...], frame_index: int) -> None:
        """Hold the crops classified this frame (BGR frame (H, W, 3)), masked, at native size up to ``max_side``."""
        if classified:
            safe = self.mask.apply(frame)
            for crop in classified:
                held = self._held.setdefault(crop.track_id, _Held())
                held.last_frame = frame_index
                if len(held.crops) < self.rules.crops_per_track:
                    x1, y1, x2, y2 = (float(v) for v in crop.xyxy)
                    side = round(max(x2 - x1, y2 - y1, 2.0) * (1 + 2 * CROP_MARGIN))
                    held.crops.append(crop_square(safe, crop.xyxy, min(side, self.rules.max_side)))
                    held.probabilities.append(crop.probabilities)
        horizon = self.rules.forget_after
        for tid in [t for t, h in self._held.items() if frame_index - h.last_frame > horizon]:
            del self._held[tid]
            self._kept.discard(tid)

    def unsure(self, probabilities: npt.NDArray[np.float32]) -> bool:
        """Whether voted probabilities (C,) are unsure by the material settings' thresholds."""
        top = np.sort(probabilities)[::-1]
        s = self.material
        return bool(top[0] < s.unsure_top1 or (len(top) > 1 and top[0] - top[1] < s.unsure_margin))

    def counted(self, events: tuple[CountEvent, ...], when: datetime | None = None) -> list[Path]:
        """Decide for each counted track whether it is kept; returns the metadata files written."""
        written: list[Path] = []
        for event in events:
            held = self._held.get(event.track_id)
            if event.track_id in self._kept or held is None or not held.crops:
                continue
            self._kept.add(event.track_id)
            voted = np.mean(held.probabilities, axis=0).astype(np.float32)
            if self._rng.random() < self.rules.sample_rate:
                kind = "random"
            elif self.unsure(voted):
                kind = "unsure"
            else:
                continue
            written.append(self._write(event, held, voted, kind, when or datetime.now(UTC)))
            self.kept[kind] += 1
        if written:
            self._prune()
        return written

    def _write(self, event: CountEvent, held: _Held, voted: npt.NDArray[np.float32], kind: str, when: datetime) -> Path:
        item_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"  # sorts oldest first
        crops = []
        for k, crop in enumerate(held.crops):
            ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, self.rules.jpeg_quality])
            if ok:
                name = f"{item_id}-c{k}.jpg"
                (self.folder / name).write_bytes(jpeg.tobytes())
                crops.append(name)
        meta = {
            "item_id": item_id,
            "ts": when.isoformat(),
            "line": event.line,
            "track_id": event.track_id,
            "counted": event.class_name,
            "probabilities": {n: round(float(p), 4) for n, p in zip(self.names, voted, strict=True)},
            "kind": kind,
            "detector": self.detector_id,
            "classifier": self.classifier_id,
            "crops": crops,
        }
        path = self.folder / f"{item_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        tmp.replace(path)  # the metadata appears last and whole: a cut-off write is never sent
        return path

    def _prune(self) -> None:
        """Past ``max_items``, drop the oldest unsure items first: the random ones are the trust figures' sample."""
        metas = self.pending()
        excess = len(metas) - self.rules.max_items
        if excess <= 0:
            return
        unsure = {m for m in metas if json.loads(m.read_text()).get("kind") == "unsure"}
        for old in sorted(metas, key=lambda m: m not in unsure)[:excess]:  # stable: oldest first within each kind
            self.remove(old)

    def pending(self) -> list[Path]:
        """Kept items waiting for upload, oldest first."""
        return sorted(self.folder.glob("*.json"))

    def body(self, meta_path: Path, device_id: str) -> dict[str, object]:
        """The ``POST /api/v1/reviews`` body of one kept item."""
        meta = json.loads(meta_path.read_text())
        crops = [base64.b64encode((self.folder / name).read_bytes()).decode() for name in meta.pop("crops")]
        return {**meta, "device_id": device_id, "crops": crops}

    def remove(self, meta_path: Path) -> None:
        for crop in self.folder.glob(f"{meta_path.stem}-c*.jpg"):
            crop.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
