"""``Tracker``: ByteTrack-style multi-object tracking with per-track class votes.

Each frame: predict every track with a constant-velocity Kalman filter; match high-confidence
detections to tracks by IoU (optimal assignment); match the remaining tracks to low-confidence
detections; start tentative tracks from unmatched high-confidence detections (confirmed on their
second hit); match what is left — items that moved more than their own size since the last frame —
by centre distance; keep unmatched tracks as *lost* for ``lost_buffer`` frames. A track's class is the
confidence-weighted majority of the classes it was detected as, over its life. A track scored low (its detections'
smoothed confidence) whose box lies partly on a larger box scored much higher is a part of that item — a handle, a
corner, a flap sticking out of the item's box — and is not shown that frame (``Tracker.parts`` names it): a part
is not an item, and a counter forgets what it knew of it.

Track state lives in parallel arrays (one row per track), so a frame costs a fixed few dozen numpy
operations however many tracks there are: this runs on every frame of the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vision import kalman
from vision.assignment import linear_assignment
from vision.detections import Detections, IntArray
from vision.geometry import box_iou, box_overlap_of_first


@dataclass(frozen=True)
class TrackerSettings:
    """Thresholds (confidence 0..1, IoU 0..1), buffers (frames) and the fast-mover gate (box diagonals)."""

    high_confidence: float = 0.45
    low_confidence: float = 0.1
    new_track_confidence: float = 0.5
    match_iou: float = 0.2
    size_ratio: float = 3.0  # no match to a box whose diagonal is this many times larger or smaller (a part, a pile)
    low_match_iou: float = 0.5
    class_mismatch_cost: float = 0.15
    lost_buffer: int = 30
    fast_max_age: int = 2
    fast_max_distance: float = 2.5
    fast_moving: float = 1.0  # px/frame: a track this fast has a direction of motion
    fast_turn_slack: float = 0.5  # box diagonals it may be matched behind that (its velocity lags when it turns back)
    fast_ahead: float = 2.0  # nor further ahead than this many times its own motion (plus the slack), once measured
    part_inside: float = 0.7  # a box this much inside (its own area) a larger box (frame or recent track) is a part: no new track
    part_score: float | None = 0.5  # a track scored below this (None: no such rule), its box smaller than and lying ...
    part_overlap: float = 0.2  # ... this much (its own area) on the box of a track shown this frame ...
    part_margin: float = 0.25  # ... scored this much higher, is a part of that item: not shown this frame
    score_memory: float = 0.7  # a track's score: its detections' confidence, this weight on the score so far
    max_tracks: int = 512


@dataclass(frozen=True)
class Track:
    """A snapshot of one track: id, box estimate (4,) xyxy pixels, class votes and life-cycle counters."""

    track_id: int
    xyxy: npt.NDArray[np.float32]
    votes: dict[int, float]
    hits: int
    confirmed: bool
    last_frame: int
    confidence: float

    @property
    def class_id(self) -> int:
        """Confidence-weighted majority class over the track's life (ties: the lower class id)."""
        return max(self.votes.items(), key=lambda kv: (kv[1], -kv[0]))[0]


class _TrackTable:
    """Every track's state as parallel arrays, one row per track."""

    def __init__(self, n_classes: int = 8) -> None:
        self.kalman = kalman.KalmanState.empty()
        self.track_id = np.zeros(0, np.int64)
        self.last_frame = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.confirmed = np.zeros(0, bool)
        self.confidence = np.zeros(0, np.float32)
        self.score = np.zeros(0, np.float32)  # detection confidence, smoothed over the track's sightings
        self.votes = np.zeros((0, n_classes))  # (T, classes) summed confidence per class

    def __len__(self) -> int:
        return len(self.track_id)

    def ensure_classes(self, max_class_id: int) -> None:
        if max_class_id >= self.votes.shape[1]:
            self.votes = np.pad(self.votes, ((0, 0), (0, max_class_id + 1 - self.votes.shape[1])))

    def keep(self, rows: npt.NDArray[np.bool_] | IntArray) -> None:
        self.kalman = self.kalman.take(rows)
        for name in ("track_id", "last_frame", "hits", "confirmed", "confidence", "score", "votes"):
            setattr(self, name, getattr(self, name)[rows])

    def append(self, state: kalman.KalmanState, ids: IntArray, frame: int, confidence: npt.NDArray[np.float32], class_id: IntArray) -> None:
        n = len(ids)
        votes = np.zeros((n, self.votes.shape[1]))
        votes[np.arange(n), class_id] = confidence
        self.kalman = self.kalman.join(state)
        self.track_id = np.concatenate([self.track_id, ids])
        self.last_frame = np.concatenate([self.last_frame, np.full(n, frame, np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.zeros(n, bool)])
        self.confidence = np.concatenate([self.confidence, confidence.astype(np.float32)])
        self.score = np.concatenate([self.score, confidence.astype(np.float32)])
        self.votes = np.concatenate([self.votes, votes])


def _diagonals(xyxy: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """(N,) box diagonals in px of (N, 4) xyxy boxes."""
    return np.asarray(np.hypot(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]))


class Tracker:
    """Assigns persistent ``tracker_id`` values to detections, frame after frame."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._table = _TrackTable()
        self.frame_index = 0
        self._next_id = 1
        self.parts: frozenset[int] = frozenset()  # ids of the tracks hidden this frame as parts of another item

    def reset(self) -> None:
        """Forget every track (e.g. when the video source restarts)."""
        self._table = _TrackTable()
        self.frame_index = 0
        self._next_id = 1
        self.parts = frozenset()

    @property
    def tracks(self) -> list[Track]:
        """Snapshots of the live tracks (confirmed, tentative and lost), oldest first."""
        t = self._table
        boxes = kalman.xyah_to_xyxy(t.kalman.pos)
        return [
            Track(
                int(t.track_id[i]),
                boxes[i],
                {int(c): float(v) for c, v in enumerate(t.votes[i]) if v > 0},
                int(t.hits[i]),
                bool(t.confirmed[i]),
                int(t.last_frame[i]),
                float(t.confidence[i]),
            )
            for i in range(len(t))
        ]

    def class_votes(self) -> tuple[IntArray, IntArray, npt.NDArray[np.float64]]:
        """Every live track's id (T,), hits (T,) and summed confidence per class (T, classes), as read-only
        arrays: what per-frame callers need without building a ``Track`` per track."""
        t = self._table
        out = (t.track_id.copy(), t.hits.copy(), t.votes.copy())
        for array in out:
            array.flags.writeable = False
        return out

    @staticmethod
    def _match_cost(cost: npt.NDArray[np.float32], rows: IntArray | None, idx: IntArray, max_cost: float) -> list[tuple[int, int]]:
        """Optimal matching of track ``rows`` (None: every track) to detections ``idx`` on ``cost``
        (tracks, detections); pairs of (row, detection index)."""
        if (rows is not None and len(rows) == 0) or len(idx) == 0:
            return []
        if rows is None:
            return [(r, int(idx[d])) for r, d in linear_assignment(cost[:, idx], max_cost)]
        pairs = linear_assignment(cost[rows][:, idx], max_cost)
        return [(int(rows[r]), int(idx[d])) for r, d in pairs]

    def _match_distance(
        self, boxes: npt.NDArray[np.float32], classes: IntArray, rows: IntArray, dets: Detections, idx: IntArray
    ) -> list[tuple[int, int]]:
        """Optimal matching by centre distance (in box diagonals per frame of absence), gated. A track that
        moves (``fast_moving`` px/frame or more) is never matched to a detection further behind where it was
        last seen than it moved forward in that time plus ``fast_turn_slack`` of its box diagonal: a fast item runs
        ahead of its prediction and an item may turn back, but an item that left the frame must not take
        over one coming in far behind it. Once its speed is measured (3 hits), it is not matched further ahead
        than ``fast_ahead`` times its own motion either: a track lost for a frame must not leap onto the item
        in front of it, nor sideways off its path, nor onto a part of another item (a box inside another track's)."""
        if len(rows) == 0 or len(idx) == 0:
            return []
        tb, db = boxes[rows], dets.xyxy[idx]
        centres_t = (tb[:, :2] + tb[:, 2:]) / 2
        centres_d = (db[:, :2] + db[:, 2:]) / 2
        diag_t, diag_d = _diagonals(tb), _diagonals(db)
        age = np.maximum(1, self.frame_index - self._table.last_frame[rows]).astype(np.float32)
        dist = np.linalg.norm(centres_t[:, None, :] - centres_d[None, :, :], axis=2)
        scale = np.maximum(diag_t[:, None], diag_d[None, :]) * age[:, None]
        cost = dist / np.maximum(scale, 1e-6) + self._class_penalty(classes[rows], dets.class_id[idx])
        cost[self._size_jump(diag_t, diag_d, self.settings.size_ratio)] = np.inf
        # Nor to a part of another item: a box lying inside the box of another track seen just now.
        recent = np.flatnonzero(self.frame_index - self._table.last_frame <= self.settings.fast_max_age)
        part_of = self._inside(db, boxes[recent])  # (detections, recent tracks)
        own = recent[None, :] == rows[:, None]  # (rows, recent tracks)
        cost[(part_of[None, :, :] & ~own[:, None, :]).any(axis=2)] = np.inf
        velocity = self._table.kalman.vel[rows, :2]
        speed = np.hypot(*velocity.T)
        last_seen = centres_t - velocity * age[:, None]  # the prediction moved the centre on at its velocity
        direction = velocity / np.maximum(speed, 1e-6)[:, None]
        ahead = np.einsum("tdk,tk->td", centres_d[None, :, :] - last_seen[:, None, :], direction)  # px along the motion
        slack = self.settings.fast_turn_slack * diag_t
        allowed_back = speed * age + slack  # as far back as it moved forward, and jitter
        moving = (speed >= self.settings.fast_moving)[:, None]
        cost[moving & (ahead < -allowed_back[:, None])] = np.inf
        # A track whose speed is measured (a few hits) may run ahead of its prediction, but not twice as far.
        allowed_ahead = self.settings.fast_ahead * speed * age + slack
        measured = (self._table.hits[rows] >= 3)[:, None]
        cost[moving & measured & (ahead > allowed_ahead[:, None])] = np.inf
        # Nor sideways off its path by more than the slack (and half its own motion): items ride the belt.
        offset = centres_d[None, :, :] - last_seen[:, None, :]
        across = np.abs(offset[:, :, 0] * direction[:, None, 1] - offset[:, :, 1] * direction[:, None, 0])
        cost[moving & measured & (across > (0.5 * speed * age + slack)[:, None])] = np.inf
        pairs = linear_assignment(cost.astype(np.float32), self.settings.fast_max_distance)
        return [(int(rows[r]), int(idx[d])) for r, d in pairs]

    @staticmethod
    def _size_jump(da: npt.NDArray[np.floating], db: npt.NDArray[np.floating], limit: float) -> npt.NDArray[np.bool_]:
        """(len(da), len(db)): where one box diagonal (px) is more than ``limit`` times the other."""
        ratio = np.maximum(da[:, None], db[None, :]) / np.maximum(np.minimum(da[:, None], db[None, :]), 1e-6)
        return np.asarray(ratio > limit)

    def _class_penalty(self, track_classes: IntArray, det_classes: IntArray) -> npt.NDArray[np.float32]:
        """(tracks, detections) cost added where a detection's class differs from the track's vote."""
        differs = track_classes[:, None] != det_classes[None, :]
        return np.asarray(np.float32(self.settings.class_mismatch_cost) * differs, np.float32)

    def update(self, detections: Detections) -> Detections:
        """Track one frame; returns the detections matched to confirmed tracks, with ``tracker_id``
        set and ``class_id`` replaced by each track's voted class, less those of parts of another item (``parts``)."""
        s, t = self.settings, self._table
        self.frame_index += 1
        if len(detections):
            t.ensure_classes(int(detections.class_id.max()))
        if len(t):
            t.kalman = kalman.predict(t.kalman)
            t.kalman.pos[:, 3] = np.maximum(t.kalman.pos[:, 3], 1.0)
        conf = detections.confidence
        high = np.flatnonzero(conf >= s.high_confidence)
        assigned: dict[int, int] = {}  # detection index → track row
        matched = np.zeros(len(t), bool)

        def take(pairs: list[tuple[int, int]]) -> None:
            for row, d in pairs:
                assigned[d] = row
                matched[row] = True

        if len(t) and len(detections):
            boxes, classes = kalman.xyah_to_xyxy(t.kalman.pos), t.votes.argmax(axis=1)
            # 1 - IoU, plus a penalty where classes differ: (tracks, detections), shared by the two IoU stages.
            cost = 1.0 - box_iou(boxes, detections.xyxy) + self._class_penalty(classes, detections.class_id)
            # A part of the item (a label, a cap) or a pile it joined is not the item: no match across a size jump.
            cost[self._size_jump(_diagonals(boxes), _diagonals(detections.xyxy), s.size_ratio)] = np.inf
            take(self._match_cost(cost, None, high, 1.0 - s.match_iou + s.class_mismatch_cost))
            if not matched.all():
                # Second stage: tracks still unmatched (confirmed ones only) against low-confidence boxes.
                low = np.flatnonzero((conf >= s.low_confidence) & (conf < s.high_confidence))
                take(self._match_cost(cost, np.flatnonzero(~matched & t.confirmed), low, 1.0 - s.low_match_iou + s.class_mismatch_cost))
            if not matched.all():
                # Third stage: fast movers. A track seen in the last few frames whose box no longer overlaps
                # its detection is matched by centre distance, in box diagonals per frame of absence.
                rows = np.flatnonzero(~matched & (self.frame_index - t.last_frame <= s.fast_max_age))
                free = np.array([d for d in high.tolist() if d not in assigned], np.int64)
                take(self._match_distance(boxes, classes, rows, detections, free))
        out_idx, out_rows = self._correct(detections, assigned)
        part = self._parts(detections.xyxy[out_idx], t.score[out_rows])
        self.parts = frozenset(t.track_id[out_rows[part]].tolist())
        out_idx, out_rows = out_idx[~part], out_rows[~part]
        out_ids, out_classes = t.track_id[out_rows], t.votes[out_rows].argmax(axis=1)
        new = [d for d in high.tolist() if d not in assigned and conf[d] >= s.new_track_confidence]
        starts = self._not_parts(detections.xyxy, np.array(new, np.int64)) if new else np.zeros(0, np.int64)
        if len(starts):
            self._start(detections, starts)
        self._prune()
        return Detections(detections.xyxy[out_idx], detections.confidence[out_idx], out_classes, out_ids)

    @staticmethod
    def _on_larger(boxes: npt.NDArray[np.float32], holders: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(len(boxes), len(holders)): how much of each box's area lies on each holder (xyxy px), -1 where the holder
        is not larger than the box."""
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        held_area = (holders[:, 2] - holders[:, 0]) * (holders[:, 3] - holders[:, 1])
        return np.where(held_area[None, :] > area[:, None], box_overlap_of_first(boxes, holders), np.float32(-1))

    def _inside(self, boxes: npt.NDArray[np.float32], holders: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """(len(boxes), len(holders)): where a box lies mostly (``part_inside`` of its area) inside a larger holder."""
        return np.asarray(self._on_larger(boxes, holders) > self.settings.part_inside)

    def _parts(self, xyxy: npt.NDArray[np.float32], score: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """(N,) which of the N boxes matched this frame (xyxy px; their tracks' scores) are parts of another item: a
        box scored below ``part_score`` lying ``part_overlap`` of its area on a larger box scored ``part_margin``
        higher — a bag's handle, a sheet's corner, a flap sticking out of a surely found item's box."""
        s = self.settings
        if s.part_score is None or len(xyxy) < 2:
            return np.zeros(len(xyxy), bool)
        holds = self._on_larger(xyxy, xyxy) >= s.part_overlap
        holds &= score[None, :] >= score[:, None] + s.part_margin
        return np.asarray((score < s.part_score) & holds.any(axis=1))

    def _not_parts(self, xyxy: npt.NDArray[np.float32], idx: IntArray) -> IntArray:
        """The detections ``idx`` that are not a part of another item: a box lying mostly inside a larger box
        of this frame, or of a track seen in the last ``fast_max_age`` frames (a label, a cap, the visible half
        of an item under another), would start a second track for it."""
        t = self._table
        recent = np.flatnonzero(self.frame_index - t.last_frame <= self.settings.fast_max_age)
        held = np.concatenate([xyxy, kalman.xyah_to_xyxy(t.kalman.pos[recent]).astype(np.float32)]) if len(recent) else xyxy
        return np.asarray(idx[~self._inside(xyxy[idx], held).any(axis=1)], np.int64)

    def _correct(self, dets: Detections, assigned: dict[int, int]) -> tuple[IntArray, IntArray]:
        """Kalman-correct every matched track with its detection, in one batch; update votes and counters.
        Returns the matched detection indices (ascending) and their track rows."""
        t = self._table
        det_idx = np.array(sorted(assigned), np.int64)
        rows = np.array([assigned[d] for d in det_idx.tolist()], np.int64)
        if len(rows) == 0:
            return det_idx, rows
        t.kalman = kalman.update(t.kalman, kalman.xyxy_to_xyah(dets.xyxy[det_idx]), rows)
        t.votes[rows, dets.class_id[det_idx]] += dets.confidence[det_idx]
        t.hits[rows] += 1
        t.last_frame[rows] = self.frame_index
        t.confidence[rows] = dets.confidence[det_idx]
        m = self.settings.score_memory
        t.score[rows] = m * t.score[rows] + (1 - m) * dets.confidence[det_idx]
        t.confirmed[rows] = True
        return det_idx, rows

    def _start(self, dets: Detections, idx: IntArray) -> None:
        """Tentative tracks from detections ``idx``."""
        state = kalman.initiate(kalman.xyxy_to_xyah(dets.xyxy[idx]))
        ids = np.arange(self._next_id, self._next_id + len(idx), dtype=np.int64)
        self._next_id += len(idx)
        self._table.append(state, ids, self.frame_index, dets.confidence[idx], dets.class_id[idx])

    def _prune(self) -> None:
        """Unconfirmed tracks that missed their second frame are dropped; lost tracks expire; at most
        ``max_tracks`` are kept (the most recently seen)."""
        s, t = self.settings, self._table
        if len(t) and t.last_frame.min() < self.frame_index:  # else every track was seen this frame
            age = self.frame_index - t.last_frame
            alive = np.where(t.confirmed, age <= s.lost_buffer, age == 0)
            if not alive.all():
                t.keep(alive)
        if len(t) > s.max_tracks:
            t.keep(np.sort(np.argsort(t.last_frame, kind="stable")[-s.max_tracks :]))
