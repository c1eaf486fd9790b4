"""``farz count``: count the items on a video file with the vision pipeline; summary and events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from device.count_config import CountSettings
from device.sources import SourceError, VideoFileSource
from vision import Annotator, CountEvent, DetectorSettings, LineCounter, OnnxDetector, Pipeline, Tracker, TrackerSettings, ZoneCounter
from vision.pipeline import Counter

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / "models" / "farz-waste.int8.onnx"
SAMPLES = REPO_ROOT / "datasets" / "samples"
LOW_CONFIDENCE = 0.1  # detections down to this score reach the tracker's second association stage


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


def build_pipeline(model: Path, settings: CountSettings) -> Pipeline:
    """Detector, tracker and the counters of ``settings``."""
    low = min(settings.confidence, LOW_CONFIDENCE)
    detector = OnnxDetector(model, DetectorSettings(confidence=low, iou=settings.iou, threads=settings.threads))
    tracker = Tracker(
        TrackerSettings(high_confidence=settings.confidence, low_confidence=low, new_track_confidence=settings.confidence + 0.05)
    )
    counters: list[Counter] = [LineCounter(spec, detector.names) for spec in settings.line_specs()]
    counters += [ZoneCounter(list(z.polygon), detector.names, name=z.name, anchor=z.anchor) for z in settings.zones]
    return Pipeline(detector, tracker, counters)


def count_video(
    video: Path,
    model: Path,
    settings: CountSettings,
    on_event: Callable[[CountEvent], None] | None = None,
    save: Path | None = None,
    progress: bool = True,
) -> CountSummary:
    """Run the pipeline over every frame of ``video``; calls ``on_event`` for each count."""
    from tqdm import tqdm

    pipeline = build_pipeline(model, settings)
    writer = None
    annotator = None
    with VideoFileSource(video) as source:
        if save is not None:
            info = source.info
            writer = cv2.VideoWriter(str(save), cv2.VideoWriter.fourcc(*"mp4v"), info.fps, (info.width, info.height))
            if not writer.isOpened():
                raise SourceError(f"{save}: cannot write a video there")
            zones = tuple(tuple(z.polygon) for z in settings.zones)
            annotator = Annotator(pipeline.detector.names, settings.line_specs(), zones)
        bar = tqdm(total=source.info.frame_count or None, unit="frame", desc=video.name, disable=not progress, leave=False)
        start = time.perf_counter()
        frames = 0
        try:
            for frame in source:
                result = pipeline.process(frame)
                frames += 1
                if on_event is not None:
                    for event in result.events:
                        on_event(event)
                if writer is not None and annotator is not None:
                    writer.write(annotator.draw(frame, result.detections, pipeline.totals()))
                bar.update(1)
        finally:
            bar.close()
            if writer is not None:
                writer.release()
        seconds = time.perf_counter() - start
    return CountSummary(counts_by_direction(pipeline.totals()), frames, seconds, frames / seconds if seconds > 0 else 0.0)
