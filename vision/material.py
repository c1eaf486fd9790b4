"""``MaterialVoter``: the material of each track, voted over the crops the ``Classifier`` saw of it.

Per frame it picks which tracked boxes to classify: boxes wholly inside the frame, not heavily
overlapped by another box, large enough, of tracks that have fewer than ``crops_per_track`` crops, none
in the last ``min_gap_frames`` frames and a vote still below ``sure_enough``; fewest crops first, then
the largest; at most ``crops_per_frame`` of them, in one batched call. A track's k-th crop may be turned
by ``turns[k]`` quarter turns before it is classified (an item keeps its pose on a belt, so turned views
are test-time augmentation at no extra crop; off by default: measured, not kept). A track's material is
the argmax of the mean of its crops' probabilities, and its confidence that mean probability. A track
that is counted before any good crop was taken is classified on the spot (``resolve``), whatever its
crop looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vision.classifier import Classifier
from vision.detections import Detections
from vision.geometry import box_iou
from vision.picture import Picture, Pixels, as_picture


@dataclass(frozen=True)
class MaterialSettings:
    """Crop rules. Sizes in px of the source frame; ``unsure_*`` mark a crop as a hard sample."""

    crops_per_track: int = 3
    crops_per_frame: int = 4
    min_gap_frames: int = 3
    min_side: int = 24
    edge_margin: int = 2
    max_overlap: float = 0.2  # IoU with any other box in the frame
    unsure_top1: float = 0.6  # a crop whose best probability is below this is unsure
    unsure_margin: float = 0.15  # ... or whose two best probabilities are closer than this
    forget_after: int = 300  # frames a track's votes are kept after it was last seen
    sure_enough: float = 0.8  # a track whose voted probability reaches this takes no more crops (1.0: all crops_per_track)
    turns: tuple[int, ...] = (0,)  # quarter turns of a track's 1st, 2nd, ... crop (cycled): (0, 1, 2) was measured, not kept


@dataclass
class _Votes:
    total: npt.NDArray[np.float64]
    crops: int = 0
    last_crop: int = -(10**9)
    last_seen: int = 0


@dataclass(frozen=True)
class Classified:
    """One crop the classifier saw this frame: the track, its box (4,) px and probabilities (C,)."""

    track_id: int
    xyxy: npt.NDArray[np.float32]
    probabilities: npt.NDArray[np.float32]

    def unsure(self, settings: MaterialSettings) -> bool:
        """Whether the classifier was unsure: a low best probability, or two classes close."""
        top = np.sort(self.probabilities)[::-1]
        return bool(top[0] < settings.unsure_top1 or (len(top) > 1 and top[0] - top[1] < settings.unsure_margin))


@dataclass
class MaterialFrame:
    """The tracked detections with ``class_id``/``confidence`` set to each track's voted material, the crops
    classified this frame, and the resolver that counters call for a track's material when they count it."""

    detections: Detections
    classified: list[Classified] = field(default_factory=list)
    voter: MaterialVoter | None = None
    frame: Picture | None = None
    frame_index: int = 0

    def resolve(self, index: int) -> tuple[int, float]:
        """(class id, confidence) of row ``index``; classifies the track now if it has no crop yet."""
        if self.voter is None or self.frame is None or self.detections.tracker_id is None:
            return int(self.detections.class_id[index]), float(self.detections.confidence[index])
        return self.voter.resolve(self.frame, self.detections, index, self)


class MaterialVoter:
    """Keeps each track's material probabilities; ``update`` once per frame after the tracker."""

    def __init__(self, classifier: Classifier, settings: MaterialSettings | None = None) -> None:
        self.classifier = classifier
        self.settings = settings or MaterialSettings()
        self.votes: dict[int, _Votes] = {}
        self.crops_run = 0  # crops classified since reset

    @property
    def names(self) -> tuple[str, ...]:
        """Material names in classifier order."""
        return self.classifier.names

    def reset(self) -> None:
        """Forget every track's votes."""
        self.votes = {}
        self.crops_run = 0

    def eligible(self, detections: Detections, width: int, height: int, frame_index: int) -> npt.NDArray[np.int64]:
        """Rows worth a crop this frame, best first, at most ``crops_per_frame``."""
        s = self.settings
        if detections.tracker_id is None or len(detections) == 0:
            return np.zeros(0, np.int64)
        xyxy = detections.xyxy
        sides = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        inside = (xyxy[:, 0] >= s.edge_margin) & (xyxy[:, 1] >= s.edge_margin)
        inside &= (xyxy[:, 2] <= width - s.edge_margin) & (xyxy[:, 3] <= height - s.edge_margin)
        ok = inside & (sides >= s.min_side)
        if len(detections) > 1:
            iou = box_iou(xyxy, xyxy)
            np.fill_diagonal(iou, 0.0)
            ok &= iou.max(axis=1) <= s.max_overlap
        crops = np.zeros(len(detections), np.int64)
        for i, tid in enumerate(detections.tracker_id.tolist()):
            v = self.votes.get(tid)
            if v is not None:
                crops[i] = v.crops
                ok[i] &= v.crops < s.crops_per_track and frame_index - v.last_crop >= s.min_gap_frames
                ok[i] &= v.crops == 0 or v.total.max() / v.crops < s.sure_enough
        rows = np.flatnonzero(ok)
        area = (xyxy[rows, 2] - xyxy[rows, 0]) * (xyxy[rows, 3] - xyxy[rows, 1])
        order = np.lexsort((-area, crops[rows]))
        return rows[order][: s.crops_per_frame].astype(np.int64)

    def _turns(self, track_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64] | None:
        """Quarter turns for the next crop of each track: ``turns`` at its number of crops so far, cycled
        (None when no crop is ever turned)."""
        turns = self.settings.turns
        if not any(turns):
            return None
        return np.asarray([turns[(v.crops if (v := self.votes.get(int(t))) else 0) % len(turns)] for t in track_ids], np.int64)

    def _add(self, tid: int, probabilities: npt.NDArray[np.float32], frame_index: int) -> None:
        v = self.votes.setdefault(tid, _Votes(np.zeros(len(self.names)), last_seen=frame_index))
        v.total += probabilities
        v.crops += 1
        v.last_crop = frame_index

    def update(self, frame: Pixels | Picture, detections: Detections, frame_index: int) -> MaterialFrame:
        """Classify this frame's eligible crops and label every track with its voted material; a ``Picture``'s
        pixels are made only if a crop is taken."""
        if detections.tracker_id is None:
            raise ValueError("MaterialVoter needs tracked detections (tracker_id set)")
        picture = as_picture(frame)
        rows = self.eligible(detections, picture.width, picture.height, frame_index)
        classified: list[Classified] = []
        if len(rows):
            boxes, turns = detections.xyxy[rows], self._turns(detections.tracker_id[rows])
            probabilities = self.classifier.classify_boxes(picture.pixels(), boxes, turns)
            self.crops_run += len(rows)
            for row, p in zip(rows.tolist(), probabilities, strict=True):
                tid = int(detections.tracker_id[row])
                self._add(tid, p, frame_index)
                classified.append(Classified(tid, detections.xyxy[row].copy(), p))
        tids = detections.tracker_id.tolist()
        class_id = detections.class_id.copy()
        confidence = detections.confidence.copy()
        for i, tid in enumerate(tids):
            v = self.votes.get(tid)
            if v is not None:
                v.last_seen = frame_index
                if v.crops:
                    mean = v.total / v.crops
                    class_id[i] = int(mean.argmax())
                    confidence[i] = float(mean.max())
        self._forget(frame_index)
        labelled = Detections(detections.xyxy, confidence, class_id, detections.tracker_id)
        return MaterialFrame(labelled, classified, self, picture, frame_index)

    def resolve(self, frame: Pixels | Picture, detections: Detections, index: int, out: MaterialFrame) -> tuple[int, float]:
        """The voted material of row ``index``, classifying its crop first if its track has none."""
        assert detections.tracker_id is not None
        tid = int(detections.tracker_id[index])
        v = self.votes.get(tid)
        if v is None or v.crops == 0:
            box = detections.xyxy[index]
            p = self.classifier.classify_boxes(as_picture(frame).pixels(), box[None], self._turns(np.array([tid], np.int64)))[0]
            self.crops_run += 1
            self._add(tid, p, out.frame_index)
            out.classified.append(Classified(tid, box.copy(), p))
            v = self.votes[tid]
        mean = v.total / v.crops
        return int(mean.argmax()), float(mean.max())

    def _forget(self, frame_index: int) -> None:
        horizon = self.settings.forget_after
        for tid in [t for t, v in self.votes.items() if frame_index - v.last_seen > horizon]:
            del self.votes[tid]
