"""``Pipeline``: detector → tracker → (material voter) → counters for one frame at a time, with per-stage timings."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vision.counter import CountEvent, Resolver
from vision.detections import Detections
from vision.detector import OnnxDetector
from vision.input_size import InputSizeChange, InputSizer
from vision.material import Classified, MaterialVoter
from vision.picture import Picture
from vision.regions import IgnoreZones
from vision.tracker import Tracker
from vision.turn import BeltTurn


class Counter(Protocol):
    """What the pipeline needs of a line or zone counter."""

    totals: dict[tuple[str, str], int]

    def update(
        self, detections: Detections, width: int, height: int, frame_index: int, resolve: Resolver | None = None
    ) -> list[CountEvent]: ...

    def reset(self) -> None: ...

    def counted_tracks(self) -> frozenset[int]: ...

    def forget(self, track_ids: frozenset[int]) -> None: ...


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds spent in each stage for one frame."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    track_ms: float
    count_ms: float
    classify_ms: float = 0.0  # choosing and classifying material crops (two-stage pipeline)

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms + self.track_ms + self.count_ms + self.classify_ms


@dataclass(frozen=True)
class FrameResult:
    """What one frame produced: tracked detections (labelled with each track's material in the two-stage
    pipeline), new count events, timings, the crops the classifier saw this frame, and the frame's size
    (width, height) in px."""

    frame_index: int
    detections: Detections
    events: tuple[CountEvent, ...]
    timings: StageTimings
    classified: tuple[Classified, ...]
    frame_size: tuple[int, int]
    input_change: InputSizeChange | None = None  # the detector's input was enlarged from the next frame on
    turned_from: float | None = None  # degrees: frames are turned upright from this one on (a belt at a slant)


class Pipeline:
    """Runs one frame through detection (minus the detections in ``ignore`` zones), tracking, the material voter (when given: the two-stage
    pipeline, whose counters then count in the classifier's class names) and every counter. ``sizer`` chooses
    the detector's input size (default: the model's own, larger where items are small: ``vision.input_size``);
    ``turn`` turns a belt seen at a slant upright for the detector and the classifier (``vision.turn``).

    Example:
        >>> pipe = Pipeline(detector, Tracker(), [LineCounter(LineSpec(0, .5, 1, .5), detector.names)])
        >>> result = pipe.process(frame)  # doctest: +SKIP
    """

    def __init__(
        self,
        detector: OnnxDetector,
        tracker: Tracker,
        counters: Sequence[Counter],
        clock: Callable[[], float] = time.perf_counter,
        material: MaterialVoter | None = None,
        ignore: IgnoreZones | None = None,
        sizer: InputSizer | None = None,
        turn: BeltTurn | None = None,
    ) -> None:
        self.detector = detector
        self.turn = turn
        self._turn_told: tuple[BeltTurn, float] | None = None  # the turn (and angle) a FrameResult last reported
        self.sizer = sizer or InputSizer()
        self.tracker = tracker
        self.material = material
        self.ignore = ignore or IgnoreZones()
        self.counters = list(counters)
        self.clock = clock
        self.frame_index = 0

    def reset(self) -> None:
        """Forget tracks and totals."""
        self.tracker.reset()
        self.sizer.reset()
        if self.material is not None:
            self.material.reset()
        for c in self.counters:
            c.reset()
        self.frame_index = 0

    @property
    def names(self) -> tuple[str, ...]:
        """The class names events and totals are in: the classifier's in the two-stage pipeline, else the detector's."""
        return self.material.names if self.material is not None else self.detector.names

    def totals(self) -> dict[tuple[str, str], int]:
        """Running totals per (direction, class) over all counters."""
        out: dict[tuple[str, str], int] = {}
        for c in self.counters:
            for key, n in c.totals.items():
                out[key] = out.get(key, 0) + n
        return out

    def process(self, frame: npt.NDArray[np.uint8]) -> FrameResult:
        """Detect, track and count one BGR frame (H, W, 3)."""
        self.frame_index += 1
        h, w = frame.shape[:2]
        t0 = self.clock()
        info = self.detector.info
        size = self.sizer.size(self.detector.input_size, info.dynamic)
        turned: Picture | None = None  # the frame turned upright, made only if a crop is classified
        turned_from = None
        if self.turn is not None and self.turn.prepare(w, h):
            turned = self.turn.picture(frame)
            if self._turn_told != (self.turn, self.turn.degrees):
                self._turn_told, turned_from = (self.turn, self.turn.degrees), self.turn.degrees
            boxed, box = self.turn.letterboxed(frame, *self.detector.input_target(size))
            blob, seen = self.detector.to_input(boxed), (turned.width, turned.height)
        else:
            (blob, box), seen = self.detector.preprocess(frame, size), (w, h)
        t1 = self.clock()
        raw = self.detector.infer(blob)
        t2 = self.clock()
        detections = self.detector.postprocess(raw, box, *seen)
        upright: dict[bytes, npt.NDArray[np.float32]] = {}
        if turned is not None and self.turn is not None:
            detections = detections[self.turn.on_picture(detections.xyxy)]
            in_frame = self.turn.to_frame(detections.xyxy)
            upright = {row.tobytes(): box_on_canvas for row, box_on_canvas in zip(in_frame, detections.xyxy, strict=True)}
            detections = Detections(in_frame, detections.confidence, detections.class_id)
        detections = self.ignore.filter(detections, w, h)
        t3 = self.clock()
        tracked = self.tracker.update(detections)
        change = self.sizer.observe(tracked, (w, h), box.ratio, self.detector.input_size, info.stride) if info.dynamic else None
        t4 = self.clock()
        resolve: Resolver | None = None
        classified: tuple[Classified, ...] = ()
        if self.material is not None:
            if turned is None:
                labelled = self.material.update(frame, tracked, self.frame_index)
                tracked, resolve = labelled.detections, labelled.resolve
            else:  # crops of the upright belt, at the boxes the detector drew on it
                on_canvas = np.stack([upright[row.tobytes()] for row in tracked.xyxy]) if len(tracked) else tracked.xyxy
                labelled = self.material.update(
                    turned, Detections(on_canvas, tracked.confidence, tracked.class_id, tracked.tracker_id), self.frame_index
                )
                voted = labelled.detections
                tracked = Detections(tracked.xyxy, voted.confidence, voted.class_id, tracked.tracker_id)
                resolve = labelled.resolve
        t5 = self.clock()
        for c in self.counters:
            c.forget(self.tracker.parts)
        events = [e for c in self.counters for e in c.update(tracked, w, h, self.frame_index, resolve)]
        t6 = self.clock()
        if self.material is not None:
            classified = tuple(labelled.classified)
            if turned is not None and self.turn is not None:
                classified = tuple(replace(c, xyxy=self.turn.to_frame(c.xyxy[None])[0]) for c in classified)
        ms = 1000.0
        timings = StageTimings((t1 - t0) * ms, (t2 - t1) * ms, (t3 - t2) * ms, (t4 - t3) * ms, (t6 - t5) * ms, (t5 - t4) * ms)
        return FrameResult(self.frame_index, tracked, tuple(events), timings, classified, (w, h), change, turned_from)
