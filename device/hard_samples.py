"""Hard samples: a bounded set of frames the device was unsure about, with its detections as pre-labels.

A frame qualifies when a tracked item's confidence is in the uncertain band, a track's class votes
are split, or the material classifier was unsure of a crop it saw (its probabilities go with the sample
as pre-labels); at most one frame per ``min_interval_s`` (of footage when replaying a file, else wall clock)
and ``max_samples`` on disk, oldest dropped first.
The uploader sends them when the link is idle (no counts waiting).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2

from device.sources import Frame
from vision import Classified, Detections, MaterialSettings, PrivacyMask, Tracker


@dataclass(frozen=True)
class SampleRules:
    """When a frame is worth a person's look."""

    low_confidence: float = 0.25
    high_confidence: float = 0.5
    split_vote_share: float = 0.6
    min_hits: int = 3
    min_interval_s: float = 10.0
    max_samples: int = 50
    jpeg_quality: int = 85


class HardSampleKeeper:
    """Keeps hard samples as ``<id>.jpg`` + ``<id>.json`` in ``folder``; ids begin with the time in ns, so they sort oldest first."""

    endpoint = "/api/v1/samples"

    def __init__(self, folder: Path, names: tuple[str, ...], rules: SampleRules | None = None, mask: PrivacyMask | None = None) -> None:
        self.folder = folder
        self.names = names
        self.rules = rules or SampleRules()
        self.mask = mask or PrivacyMask()  # blacked out before the JPEG is encoded: no unmasked copy is stored or sent
        self._last = float("-inf")
        folder.mkdir(parents=True, exist_ok=True)

    def reason(
        self, detections: Detections, tracker: Tracker, classified: tuple[Classified, ...] = (), material: MaterialSettings | None = None
    ) -> str | None:
        """Why this frame is hard, or None."""
        r = self.rules
        for crop in classified:
            if material is not None and crop.unsure(material):
                top = crop.probabilities.argsort()[::-1][:2]
                said = ", ".join(f"{self.names[int(k)]} {float(crop.probabilities[k]):.2f}" for k in top)
                return f"unsure material on track {crop.track_id} ({said})"
        band = (detections.confidence >= r.low_confidence) & (detections.confidence < r.high_confidence)
        if band.any():
            return f"low confidence ({float(detections.confidence[band].min()):.2f})"
        ids, hits, votes = tracker.class_votes()
        split = (
            (hits >= r.min_hits) & ((votes > 0).sum(axis=1) > 1) & (votes.max(axis=1, initial=0.0) < r.split_vote_share * votes.sum(axis=1))
        )
        return f"split class votes on track {int(ids[split][0])}" if split.any() else None

    def consider(
        self,
        frame: Frame,
        detections: Detections,
        tracker: Tracker,
        model: str,
        now: float | None = None,
        classified: tuple[Classified, ...] = (),
        material: MaterialSettings | None = None,
    ) -> bool:
        """Store the frame if it is hard and the rate and size limits allow; returns whether it was stored.

        ``now`` (s) is the clock the rate limit runs on: footage time for a file, monotonic time if None.
        ``classified``: the crops the material classifier saw this frame (two-stage pipeline), judged by
        ``material``'s unsure thresholds; a detection whose crop was classified carries its probabilities."""
        now = time.monotonic() if now is None else now
        if now - self._last < self.rules.min_interval_s:
            return False
        why = self.reason(detections, tracker, classified, material)
        if why is None:
            return False
        ok, jpeg = cv2.imencode(".jpg", self.mask.apply(frame), [cv2.IMWRITE_JPEG_QUALITY, self.rules.jpeg_quality])
        if not ok:
            return False
        self._last = now
        sample_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:16]}"  # sorts oldest first
        (self.folder / f"{sample_id}.jpg").write_bytes(jpeg.tobytes())
        by_track = {crop.track_id: crop for crop in classified}
        tracks = detections.tracker_id.tolist() if detections.tracker_id is not None else [None] * len(detections)
        rows: list[dict[str, object]] = []
        for box, p, c, tid in zip(detections.xyxy, detections.confidence, detections.class_id, tracks, strict=True):
            row: dict[str, object] = {
                "class": self.names[int(c)],
                "confidence": round(float(p), 4),
                "xyxy": [round(float(v), 1) for v in box],
            }
            if tid in by_track:
                row["probabilities"] = {n: round(float(v), 4) for n, v in zip(self.names, by_track[tid].probabilities, strict=True)}
            rows.append(row)
        meta = {
            "sample_id": sample_id,
            "ts": datetime.now(UTC).isoformat(),
            "reason": why,
            "model": model,
            "width": int(frame.shape[1]),
            "height": int(frame.shape[0]),
            "detections": rows,
        }
        (self.folder / f"{sample_id}.json").write_text(json.dumps(meta))
        self._prune()
        return True

    def _prune(self) -> None:
        metas = self.pending()
        for old in metas[: max(0, len(metas) - self.rules.max_samples)]:
            old.with_suffix(".jpg").unlink(missing_ok=True)
            old.unlink(missing_ok=True)

    def pending(self) -> list[Path]:
        """Sample metadata files waiting for upload, oldest first."""
        return sorted(self.folder.glob("*.json"))

    def body(self, meta_path: Path, device_id: str) -> dict[str, object]:
        """The ``POST /api/v1/samples`` body of one stored sample."""
        meta = json.loads(meta_path.read_text())
        image = meta_path.with_suffix(".jpg").read_bytes()
        return {**meta, "device_id": device_id, "image_jpeg_b64": base64.b64encode(image).decode()}

    def remove(self, meta_path: Path) -> None:
        meta_path.with_suffix(".jpg").unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
