"""``farz count``: count the items on a video file with the vision pipeline; summary and events."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2

from device.count_config import CountSettings
from device.sources import SourceError, VideoFileSource
from vision import (
    ITEM_CLASSES,
    Annotator,
    BeltTurn,
    Classifier,
    CountEvent,
    DetectorSettings,
    IgnoreZones,
    InputSizeChange,
    InputSizer,
    LineCounter,
    MaterialSettings,
    MaterialVoter,
    OnnxDetector,
    Pipeline,
    PrivacyMask,
    Tracker,
    TrackerSettings,
    ZoneCounter,
)
from vision.errors import ModelError
from vision.pipeline import Counter, FrameResult

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / "models" / "farz-waste.int8.onnx"
DEFAULT_CLASSIFIER = REPO_ROOT / "models" / "farz-material.int8.onnx"
SAMPLES = REPO_ROOT / "datasets" / "samples"
# Two-stage: an anchor's item score is P(any class) = 1 - prod(1 - s_c) of the six-class detector's sigmoid
# scores, not the best class's: on 400 held-out belt scenes class-agnostic AP50 0.862 against 0.846 (models/README.md).
ITEM_SCORE = "any"
# Two-stage: a box lying mostly inside another (intersection over the smaller box's area > 0.7) is a part of
# an item boxed beside it; on 24 validation belt videos it took extra counts from 13 to 8 (models/README.md).
CONTAINED = 0.7
LOW_CONFIDENCE = 0.1  # detections down to this score reach the tracker's second association stage

log = logging.getLogger("farz.count")


def turn_message(degrees: float) -> str:
    """One line for the log: frames are turned upright because the belt lies at a slant."""
    return (
        f"the count line lies {abs(degrees):.0f} degrees off the picture's axes: frames are turned upright by it before "
        "detection (`turn_upright: false` in the count settings stops it)"
    )


def frame_messages(result: FrameResult) -> list[str]:
    """The log lines a frame's result calls for: the detector's input enlarged, frames turned upright."""
    messages = [] if result.input_change is None else [input_change_message(result.input_change)]
    return messages if result.turned_from is None else [*messages, turn_message(result.turned_from)]


def input_change_message(change: InputSizeChange) -> str:
    """One line for the log: the detector's input was enlarged because items are small in it."""
    return (
        f"items are small in the detector's {change.old}-px input (median {change.median_px:g} px across, over the "
        f"first {change.tracks} tracks): detecting at {change.new} px from here on, about {(change.new / change.old) ** 2:.1f}x "
        "the detector's time per frame (`input_size` in the count settings fixes the size)"
    )


@dataclass(frozen=True)
class CountSummary:
    """Totals of a run: ``counts[direction][class]``, frames processed, wall seconds, frames/s."""

    counts: dict[str, dict[str, int]]
    frames: int
    seconds: float
    fps: float

    def to_json(self) -> str:
        return json.dumps({"counts": self.counts, "frames": self.frames, "seconds": round(self.seconds, 3), "fps": round(self.fps, 2)})


def counts_by_direction(totals: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """{(direction, class): n} → {"in": {class: n}, "out": {class: n}} with classes sorted."""
    out: dict[str, dict[str, int]] = {"in": {}, "out": {}}
    for (direction, name), n in sorted(totals.items()):
        out.setdefault(direction, {})[name] = n
    return out


def load_classifier(path: Path, detector: OnnxDetector, threads: int = 0) -> Classifier:
    """The material classifier for ``detector``: a multi-class detector's class list must be the classifier's
    (both trained on one taxonomy), so that ``--classifier none`` counts in the same classes."""
    classifier = Classifier(path, threads=threads)
    if len(detector.names) > 1 and classifier.names != detector.names:
        raise ModelError(
            str(path),
            f"classes {list(classifier.names)} do not match the detector's {list(detector.names)}",
            "use a detector and a classifier trained on the same taxonomy",
        )
    return classifier


def build_pipeline(
    model: Path,
    settings: CountSettings,
    classifier: Path | None = None,
    material: MaterialSettings | None = None,
    item_counts: bool = False,
) -> Pipeline:
    """Detector, tracker and the counters of ``settings``; with ``classifier``, the two-stage pipeline: the
    detector finds items whatever their class, and each track's material is voted over its crops. Without one,
    an item detector (one class, ``item``) is refused unless ``item_counts`` (benchmarks: what the pipeline
    costs without classifying)."""
    low = min(settings.confidence, LOW_CONFIDENCE)
    two_stage = classifier is not None
    item_score = ITEM_SCORE if two_stage else "max"
    detector_settings = DetectorSettings(
        confidence=low,
        iou=settings.iou,
        threads=settings.threads,
        agnostic=two_stage,
        item_score=item_score,
        contained=CONTAINED if two_stage else None,
    )
    detector = OnnxDetector(model, detector_settings)
    tracker = Tracker(
        TrackerSettings(
            high_confidence=settings.confidence,
            low_confidence=low,
            new_track_confidence=settings.confidence + 0.05,
            class_mismatch_cost=0.0 if two_stage else TrackerSettings.class_mismatch_cost,
        )
    )
    if classifier is None and detector.names == ITEM_CLASSES and not item_counts:
        raise ModelError(str(model), "an item detector (its one class is `item`) names no material", "count with a material classifier")
    voter = MaterialVoter(load_classifier(classifier, detector, settings.threads), material) if classifier is not None else None
    names = voter.names if voter is not None else detector.names
    sizer = input_sizer(settings)
    if sizer.fixed is not None and not detector.info.dynamic and sizer.fixed != detector.input_size:
        raise ModelError(
            str(model),
            f"input_size {sizer.fixed} asked for, but the model's input is fixed at {detector.input_size} px",
            "remove input_size from the settings, or export the model with a free input size",
        )
    counters = build_counters(settings, names)
    return Pipeline(detector, tracker, counters, material=voter, ignore=ignore_zones(settings), sizer=sizer, turn=belt_turn(settings))


def belt_turn(settings: CountSettings) -> BeltTurn | None:
    """The turn upright of a belt seen at a slant, by the first count line's (None: no line, or ``turn_upright`` off)."""
    specs = settings.line_specs()
    return BeltTurn(specs[0]) if specs and settings.turn_upright else None


def input_sizer(settings: CountSettings) -> InputSizer:
    """The detector's input size rule of ``settings``: fixed, or ``auto`` (``vision.input_size``)."""
    return InputSizer(None if settings.input_size == "auto" else settings.input_size)


def build_counters(settings: CountSettings, names: tuple[str, ...], previous: Sequence[Counter] = ()) -> list[Counter]:
    """The line and zone counters of ``settings``. With the ``previous`` counters (settings edited while
    counting): a counter whose line or zone is unchanged is kept as it is, and a changed one of the same
    name does not count again the tracks its predecessor counted."""
    by_name = {_counter_key(c)[0]: c for c in previous}
    counters: list[Counter] = []

    def carried(name: str, key: tuple[str, object]) -> tuple[Counter | None, frozenset[int]]:
        old = by_name.get(name)
        if old is not None and _counter_key(old) == key:
            return old, frozenset()
        return None, old.counted_tracks() if old is not None else frozenset()

    for spec in settings.line_specs():
        kept, _ = carried(spec.name, (spec.name, spec))
        if kept is None:
            line = LineCounter(spec, names)
            old = by_name.get(spec.name)
            if isinstance(old, LineCounter):
                line.carry_from(old)
            kept = line
        counters.append(kept)
    for z in settings.zones:
        polygon = [(float(x), float(y)) for x, y in z.polygon]
        kept, counted = carried(z.name, (z.name, (tuple(polygon), z.anchor)))
        counters.append(kept or ZoneCounter(polygon, names, name=z.name, anchor=z.anchor, counted=counted))
    return counters


def _counter_key(counter: Counter) -> tuple[str, object]:
    """(name, geometry) of a line or zone counter: equal keys count the same way."""
    if isinstance(counter, LineCounter):
        return counter.spec.name, counter.spec
    if isinstance(counter, ZoneCounter):
        return counter.name, (tuple(tuple(float(v) for v in p) for p in counter.polygon.tolist()), counter.anchor)
    raise TypeError(f"unknown counter {counter!r}")


def ignore_zones(settings: CountSettings) -> IgnoreZones:
    return IgnoreZones([tuple(r.polygon) for r in settings.ignore])


def privacy_mask(settings: CountSettings) -> PrivacyMask:
    return PrivacyMask([tuple(r.polygon) for r in settings.masks])


def count_video(
    video: Path,
    model: Path,
    settings: CountSettings,
    on_event: Callable[[CountEvent], None] | None = None,
    save: Path | None = None,
    progress: bool = True,
    classifier: Path | None = None,
    material: MaterialSettings | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
) -> CountSummary:
    """Run the pipeline over every frame of ``video`` (two-stage with ``classifier``); calls ``on_event`` for
    each count and ``on_frame`` with each frame's result."""
    from tqdm import tqdm

    pipeline = build_pipeline(model, settings, classifier, material)
    writer = None
    annotator = None
    with VideoFileSource(video) as source:
        if save is not None:
            info = source.info
            writer = cv2.VideoWriter(str(save), cv2.VideoWriter.fourcc(*"mp4v"), info.fps, (info.width, info.height))
            if not writer.isOpened():
                raise SourceError(f"{save}: cannot write a video there")
            zones = tuple(tuple(z.polygon) for z in settings.zones)
            annotator = Annotator(pipeline.names, settings.line_specs(), zones)
        mask = privacy_mask(settings)
        bar = tqdm(total=source.info.frame_count or None, unit="frame", desc=video.name, disable=not progress, leave=False)
        start = time.perf_counter()
        frames = 0
        try:
            for frame in source:
                result = pipeline.process(frame)
                frames += 1
                for message in frame_messages(result):
                    log.warning("%s: %s", video.name, message)
                if on_frame is not None:
                    on_frame(result)
                if on_event is not None:
                    for event in result.events:
                        on_event(event)
                if writer is not None and annotator is not None:
                    writer.write(annotator.draw(mask.apply(frame), result.detections, pipeline.totals()))
                bar.update(1)
        finally:
            bar.close()
            if writer is not None:
                writer.release()
        seconds = time.perf_counter() - start
    return CountSummary(counts_by_direction(pipeline.totals()), frames, seconds, frames / seconds if seconds > 0 else 0.0)
