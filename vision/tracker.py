"""``Tracker``: ByteTrack-style multi-object tracking with per-track class votes.

Each frame: predict every track with a constant-velocity Kalman filter; match high-confidence
detections to tracks by IoU (optimal assignment); match the remaining tracks to low-confidence
detections; start tentative tracks from unmatched high-confidence detections (confirmed on their
second hit); match what is left — items that moved more than their own size since the last frame —
by centre distance; keep unmatched tracks as *lost* for ``lost_buffer`` frames. A track's class is the
confidence-weighted majority of the classes it was detected as, over its life.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision import kalman
from vision.assignment import linear_assignment
from vision.detections import Detections
from vision.geometry import box_iou


@dataclass(frozen=True)
class TrackerSettings:
    """Thresholds (confidence 0..1, IoU 0..1), buffers (frames) and the fast-mover gate (box diagonals)."""

    high_confidence: float = 0.45
    low_confidence: float = 0.1
    new_track_confidence: float = 0.5
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    class_mismatch_cost: float = 0.15
    lost_buffer: int = 30
    fast_max_age: int = 2
    fast_max_distance: float = 2.5
    max_tracks: int = 512


@dataclass
class Track:
    """One tracked object: Kalman state, class votes and life-cycle counters."""

    track_id: int
    mean: kalman.Vector
    cov: kalman.Matrix
    votes: dict[int, float] = field(default_factory=dict)
    hits: int = 1
    confirmed: bool = False
    last_frame: int = 0
    confidence: float = 0.0

    @property
    def xyxy(self) -> np.ndarray:
        """Current box estimate (4,) in pixels."""
        return kalman.xyah_to_xyxy(self.mean)

    @property
    def class_id(self) -> int:
        """Confidence-weighted majority class over the track's life."""
        return max(self.votes.items(), key=lambda kv: (kv[1], -kv[0]))[0]

    def vote(self, class_id: int, confidence: float) -> None:
        self.votes[class_id] = self.votes.get(class_id, 0.0) + confidence


class Tracker:
    """Assigns persistent ``tracker_id`` values to detections, frame after frame."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self.tracks: list[Track] = []
        self.frame_index = 0
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track (e.g. when the video source restarts)."""
        self.tracks = []
        self.frame_index = 0
        self._next_id = 1

    def _match(self, tracks: list[Track], dets: Detections, idx: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int]]:
        """Optimal IoU matching of ``tracks`` to detections ``idx``; returns (pairs of (track, det index), unmatched tracks)."""
        if not tracks or len(idx) == 0:
            return [], list(range(len(tracks)))
        boxes = np.stack([t.xyxy for t in tracks])
        cost = 1.0 - box_iou(boxes, dets.xyxy[idx]) + self._class_penalty(tracks, dets, idx)
        pairs = linear_assignment(cost.astype(np.float32), max_cost)
        matched = {p[0] for p in pairs}
        return [(t, int(idx[d])) for t, d in pairs], [t for t in range(len(tracks)) if t not in matched]

    def _match_distance(self, tracks: list[Track], dets: Detections, idx: np.ndarray) -> list[tuple[int, int]]:
        """Optimal matching by centre distance (in box diagonals per frame of absence), gated."""
        if not tracks or len(idx) == 0:
            return []
        boxes = np.stack([t.xyxy for t in tracks])
        det = dets.xyxy[idx]
        centres_t = (boxes[:, :2] + boxes[:, 2:]) / 2
        centres_d = (det[:, :2] + det[:, 2:]) / 2
        diag_t = np.hypot(*(boxes[:, 2:] - boxes[:, :2]).T)
        diag_d = np.hypot(*(det[:, 2:] - det[:, :2]).T)
        age = np.array([max(1, self.frame_index - t.last_frame) for t in tracks], np.float32)
        dist = np.linalg.norm(centres_t[:, None, :] - centres_d[None, :, :], axis=2)
        scale = np.maximum(diag_t[:, None], diag_d[None, :]) * age[:, None]
        cost = dist / np.maximum(scale, 1e-6) + self._class_penalty(tracks, dets, idx)
        return [(t, int(idx[d])) for t, d in linear_assignment(cost.astype(np.float32), self.settings.fast_max_distance)]

    def _class_penalty(self, tracks: list[Track], dets: Detections, idx: np.ndarray) -> np.ndarray:
        """(tracks, detections) cost added where a detection's class differs from the track's vote."""
        track_cls = np.array([t.class_id for t in tracks])
        return np.asarray(self.settings.class_mismatch_cost * (track_cls[:, None] != dets.class_id[idx][None, :]), np.float64)

    def _take(self, tracks: list[Track], pairs: list[tuple[int, int]], dets: Detections, assigned: dict[int, Track]) -> None:
        """Update each matched track with its detection and record the detection as assigned."""
        for ti, d in pairs:
            self._apply(tracks[ti], dets, d)
            assigned[d] = tracks[ti]

    def _apply(self, track: Track, dets: Detections, i: int) -> None:
        track.mean, track.cov = kalman.update(track.mean, track.cov, kalman.xyxy_to_xyah(dets.xyxy[i]))
        track.vote(int(dets.class_id[i]), float(dets.confidence[i]))
        track.hits += 1
        track.last_frame = self.frame_index
        track.confidence = float(dets.confidence[i])
        track.confirmed = True

    def update(self, detections: Detections) -> Detections:
        """Track one frame; returns the detections matched to confirmed tracks, with ``tracker_id``
        set and ``class_id`` replaced by each track's voted class."""
        s = self.settings
        self.frame_index += 1
        if self.tracks:
            means, covs = kalman.predict_many(np.stack([t.mean for t in self.tracks]), np.stack([t.cov for t in self.tracks]))
            means[:, 3] = np.maximum(means[:, 3], 1.0)
            for track, mean, cov in zip(self.tracks, means, covs, strict=True):
                track.mean, track.cov = mean, cov
        conf = detections.confidence
        high = np.flatnonzero(conf >= s.high_confidence)
        low = np.flatnonzero((conf >= s.low_confidence) & (conf < s.high_confidence))
        assigned: dict[int, Track] = {}
        pairs, rest = self._match(self.tracks, detections, high, 1.0 - s.match_iou + s.class_mismatch_cost)
        self._take(self.tracks, pairs, detections, assigned)
        # Second stage: tracks still unmatched (confirmed ones only) against low-confidence boxes.
        remaining = [self.tracks[ti] for ti in rest if self.tracks[ti].confirmed]
        pairs2, _ = self._match(remaining, detections, low, 1.0 - s.low_match_iou + s.class_mismatch_cost)
        self._take(remaining, pairs2, detections, assigned)
        # Third stage: fast movers. A track seen in the last few frames whose box no longer overlaps its
        # detection is matched by centre distance, in box diagonals per frame of absence.
        taken = {id(t) for t in assigned.values()}
        recent = [t for t in self.tracks if id(t) not in taken and self.frame_index - t.last_frame <= s.fast_max_age]
        free = np.array([d for d in high.tolist() if d not in assigned], np.int64)
        self._take(recent, self._match_distance(recent, detections, free), detections, assigned)
        for di in high.tolist():
            if di in assigned or conf[di] < s.new_track_confidence:
                continue
            mean, cov = kalman.initiate(kalman.xyxy_to_xyah(detections.xyxy[di]))
            track = Track(self._next_id, mean, cov, last_frame=self.frame_index, confidence=float(conf[di]))
            track.vote(int(detections.class_id[di]), float(conf[di]))
            self._next_id += 1
            self.tracks.append(track)
        # Unconfirmed tracks that missed their second frame are dropped; lost tracks expire.
        self.tracks = [
            t
            for t in self.tracks
            if (t.confirmed and self.frame_index - t.last_frame <= s.lost_buffer) or (not t.confirmed and t.last_frame == self.frame_index)
        ]
        if len(self.tracks) > s.max_tracks:
            self.tracks.sort(key=lambda t: t.last_frame)
            self.tracks = self.tracks[-s.max_tracks :]
        out_idx = np.array(sorted(assigned), np.int64)
        if len(out_idx) == 0:
            return Detections.empty().with_tracks(np.zeros(0, np.int64))
        subset = detections[out_idx]
        ids = np.array([assigned[int(i)].track_id for i in out_idx], np.int64)
        classes = np.array([assigned[int(i)].class_id for i in out_idx], np.int64)
        return subset.with_tracks(ids, classes)
