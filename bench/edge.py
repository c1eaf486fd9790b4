"""``farz bench edge``: frames/s and count error of four ways to count, on the same frames, in one run.

- ``bare``: letterbox + ``session.run`` only — the ceiling any pipeline on this model can reach;
- ``pipeline``: the farz pipeline (detect, track, count) writing every event as a JSON line;
- ``ultralytics``: ``ultralytics.solutions.ObjectCounter`` on the same ONNX file (training extra);
- ``supervision``: ByteTrack (``trackers.ByteTrackTracker``, which replaced ``sv.ByteTrack`` in
  supervision 0.31) + ``supervision.LineZone`` fed farz's detections.

Frames are decoded into memory first so that decoding costs no method anything, and the methods take turns
on blocks of 30 frames (the order rotating) so that all four see the same machine load. Count error is the
mean over classes of ``|counted - true| / true`` on per-class totals (both directions together, so
methods with other direction conventions are judged fairly); classes counted but absent from the
truth add their count as error against a denominator of 1.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.count import build_pipeline, counts_by_direction
from device.count_config import CountSettings, settings_for_video
from device.sources import Frame, VideoFileSource
from device.truth import Counts, read_truth
from device.truth import truth_path as default_truth_path
from training.evaluate import count_error
from vision import MaterialSettings, OnnxDetector


def load_frames(video: Path, max_frames: int = 0) -> list[Frame]:
    """Every frame of ``video`` (or the first ``max_frames``) in memory."""
    frames: list[Frame] = []
    with VideoFileSource(video) as source:
        for frame in source:
            frames.append(frame)
            if max_frames and len(frames) >= max_frames:
                break
    return frames


WARMUP_FRAMES = 10
STAGES = ("preprocess", "inference", "postprocess", "track", "count", "classify")  # classify: the two-stage pipeline only


@dataclass
class Method:
    """One way to count: ``step`` processes one frame; ``counts`` reads its totals after the run."""

    name: str
    step: Callable[[Frame], object]
    counts: Callable[[], Counts | None]
    draws_on_frame: bool = False  # gets its own copy of each frame (made outside the timing)
    stage_ms: dict[str, float] | None = None  # summed per-stage milliseconds, where the method reports them


def interleaved_seconds(frames: list[Frame], methods: list[Method], block: int = 30) -> dict[str, list[float]]:
    """Seconds each method spent on each block of ``frames``. The methods take turns, ``block`` frames at a
    time (the order rotating every turn), so that all see the same machine load; blocks rather than single
    frames, so that one method's leftovers (caches, a framework's spinning worker threads) do not land on the next."""
    spent: dict[str, list[float]] = {m.name: [] for m in methods}
    for turn, start in enumerate(range(0, len(frames), block)):
        k = turn % len(methods)
        for method in methods[k:] + methods[:k]:
            seconds = 0.0
            for frame in frames[start : start + block]:
                own = frame.copy() if method.draws_on_frame else frame
                t0 = time.perf_counter()
                method.step(own)
                seconds += time.perf_counter() - t0
            spent[method.name].append(seconds)
    return spent


def block_ratios(faster: list[float], slower: list[float]) -> dict[str, float]:
    """Speed ratio of one method over another block by block (seconds of ``slower`` / seconds of ``faster`` on
    the same frames, in the same turn): median and quartiles. A burst of load from elsewhere on the machine
    moves a few blocks' ratios, not their median."""
    ratios = np.asarray(slower) / np.maximum(np.asarray(faster), 1e-9)
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return {"median": round(float(median), 3), "q1": round(float(q1), 3), "q3": round(float(q3), 3), "blocks": len(ratios)}


def pipeline_method(
    name: str, model: Path, settings: CountSettings, frames: list[Frame], classifier: Path | None, material: MaterialSettings | None = None
) -> Method:
    """A farz pipeline (two-stage with ``classifier``, crop rules ``material``) writing every event as a JSON line, warmed up."""
    pipeline = build_pipeline(model, settings, classifier, material, item_counts=True)
    sink = io.StringIO()
    for frame in frames[:WARMUP_FRAMES]:
        pipeline.detector.infer(pipeline.detector.preprocess(frame)[0])  # warms the session, leaves no track state
    if pipeline.material is not None and frames:
        classifier_ = pipeline.material.classifier
        crop = np.zeros((1, classifier_.imgsz, classifier_.imgsz, 3), np.uint8)
        for _ in range(WARMUP_FRAMES):
            classifier_.predict(crop)
    stage_ms = dict.fromkeys(STAGES, 0.0)

    def run_pipeline(frame: Frame) -> None:
        result = pipeline.process(frame)
        for e in result.events:
            sink.write(json.dumps({"line": e.line, "class": e.class_name, "direction": e.direction, "track_id": e.track_id}) + "\n")
        for stage in STAGES:
            stage_ms[stage] += getattr(result.timings, f"{stage}_ms")

    return Method(name, run_pipeline, lambda: counts_by_direction(pipeline.totals()), stage_ms=stage_ms)


def bare_and_pipeline(
    model: Path, settings: CountSettings, frames: list[Frame], classifier: Path | None = None, material: MaterialSettings | None = None
) -> list[Method]:
    """Bare ``preprocess + session.run``, the full farz pipeline (two-stage with ``classifier`` and crop rules
    ``material``) and, with a classifier, the same pipeline counting with the detector's classes
    (``detector_only``); separate sessions of the same model, warmed up."""
    bare = build_pipeline(model, settings, item_counts=True).detector
    for frame in frames[:WARMUP_FRAMES]:
        bare.infer(bare.preprocess(frame)[0])

    def run_bare(frame: Frame) -> None:
        bare.infer(bare.preprocess(frame)[0])

    methods = [Method("bare", run_bare, lambda: None), pipeline_method("pipeline", model, settings, frames, classifier, material)]
    if classifier is not None:
        methods.append(pipeline_method("detector_only", model, settings, frames, None))
    return methods


def supervision_method(model: Path, settings: CountSettings, frames: list[Frame], fps: float) -> Method:
    """supervision's ByteTrack + LineZone on farz detections."""
    import supervision as sv
    from trackers import ByteTrackTracker

    detector = build_pipeline(model, settings, item_counts=True).detector
    h, w = frames[0].shape[:2]
    spec = settings.line_specs()[0]
    tracker = ByteTrackTracker(frame_rate=fps)
    for frame in frames[:WARMUP_FRAMES]:
        detector(frame)
    zone = sv.LineZone(start=sv.Point(spec.x1 * w, spec.y1 * h), end=sv.Point(spec.x2 * w, spec.y2 * h))
    counts: Counts = {"in": {}, "out": {}}

    def step(frame: Frame) -> None:
        d = detector(frame)
        dets = sv.Detections(xyxy=np.asarray(d.xyxy), confidence=np.asarray(d.confidence), class_id=np.asarray(d.class_id))
        dets = tracker.update(dets)
        crossed_in, crossed_out = zone.trigger(dets)
        classes = np.asarray(dets.class_id if dets.class_id is not None else np.zeros(len(dets), np.int64))
        for mask, direction in ((crossed_in, "out"), (crossed_out, "in")):  # supervision's `in` is our `out`
            for cid in classes[mask]:
                name = detector.names[int(cid)]
                counts[direction][name] = counts[direction].get(name, 0) + 1

    return Method("supervision", step, lambda: counts)


def ultralytics_method(model: Path, settings: CountSettings, frames: list[Frame]) -> Method:
    """Ultralytics' ObjectCounter on the same ONNX model, offline, warmed up on a second instance."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_VERBOSE"] = "False"  # its warnings go to stdout, where --json prints one object
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "farz-ultralytics"))
    from ultralytics import solutions

    h, w = frames[0].shape[:2]
    spec = settings.line_specs()[0]
    # The model's own input size: Ultralytics would run a dynamic-input ONNX model at its default 640.
    info = OnnxDetector(model).info
    imgsz = max(info.imgsz)
    if info.uint8_input:  # Ultralytics feeds float RGB: the same INT8 graph with its float input restored
        from training.input_layout import convert_file

        float_copy = Path(tempfile.gettempdir()) / "farz-bench" / f"{info.sha256[:16]}.float-input.onnx"
        convert_file(model, float_copy, uint8=False)
        model = float_copy
    common = {"model": str(model), "show": False, "verbose": False, "conf": settings.confidence, "imgsz": imgsz}
    counter = solutions.ObjectCounter(region=[(spec.x1 * w, spec.y1 * h), (spec.x2 * w, spec.y2 * h)], **common)
    warm = solutions.ObjectCounter(region=counter.region, **common)
    for frame in frames[:WARMUP_FRAMES]:
        warm(frame)

    def counts() -> Counts:
        out: Counts = {"in": {}, "out": {}}
        for name, per in counter.classwise_count.items():
            for key, direction in (("IN", "in"), ("OUT", "out")):
                if per.get(key):
                    out[direction][str(name)] = int(per[key])
        return out

    return Method("ultralytics", counter, counts, draws_on_frame=True)  # it annotates the frame in place


def bench_edge(
    video: Path,
    model: Path,
    truth_path: Path | None = None,
    max_frames: int = 0,
    rounds: int = 3,
    classifier: Path | None = None,
    material: MaterialSettings | None = None,
) -> dict[str, object]:
    """Run every method on the same in-memory frames, interleaved, ``rounds`` times (each from a fresh
    state); frames/s over all rounds; returns the JSON-ready result. ``pipeline`` is two-stage with
    ``classifier`` (then ``detector_only`` is the same pipeline without it, for ``two_stage_over_detector_only``)."""
    from device.sources import probe_video

    rounds = max(1, rounds)
    info = probe_video(video)
    settings = settings_for_video(video, None, None)
    frames = load_frames(video, max_frames)
    truth_file = truth_path or default_truth_path(video)
    truth: Counts | None = read_truth(truth_file) if truth_file.is_file() and not max_frames else None
    result: dict[str, object] = {"video": str(video), "model": str(model), "frames": len(frames), "rounds": rounds}
    result["classifier"] = None if classifier is None else str(classifier)
    result["sure_enough"] = (material or MaterialSettings()).sure_enough
    result["turns"] = list((material or MaterialSettings()).turns)
    blocks: dict[str, list[float]] = {}  # each method's seconds per block, over every round
    stage_ms = dict.fromkeys(STAGES, 0.0)
    for _ in range(rounds):
        methods = [*bare_and_pipeline(model, settings, frames, classifier, material), supervision_method(model, settings, frames, info.fps)]
        try:
            methods.append(ultralytics_method(model, settings, frames))
        except ImportError:
            result["ultralytics_fps"], result["ultralytics_counts"] = None, None
        for name, spent in interleaved_seconds(frames, methods).items():
            blocks.setdefault(name, []).extend(spent)
        for method in methods:
            if method.name == "pipeline":
                for stage, ms in (method.stage_ms or {}).items():
                    stage_ms[stage] += ms
    fps = {name: rounds * len(frames) / sum(spent) for name, spent in blocks.items()}
    counted: dict[str, Counts] = {}
    for method in methods:
        result[f"{method.name}_fps"] = round(fps[method.name], 2)
        if (counts := method.counts()) is not None:
            result[f"{method.name}_counts"] = counted[method.name] = counts
    result["pipeline_over_bare"] = round(fps["pipeline"] / fps["bare"], 3)
    # Where the pipeline's time goes, per frame, measured inside the interleaved loop.
    result["pipeline_stage_us"] = {stage: round(1000 * ms / (rounds * len(frames)), 1) for stage, ms in stage_ms.items()}
    if "ultralytics" in fps:
        result["pipeline_over_ultralytics"] = round(fps["pipeline"] / fps["ultralytics"], 3)
        result["pipeline_over_ultralytics_by_block"] = block_ratios(blocks["pipeline"], blocks["ultralytics"])
    if "detector_only" in fps:
        result["two_stage_over_detector_only"] = round(fps["pipeline"] / fps["detector_only"], 3)
        result["two_stage_over_detector_only_by_block"] = block_ratios(blocks["pipeline"], blocks["detector_only"])
    if truth is not None:
        result["truth"] = truth
        errors = {name: count_error(counts, truth) for name, counts in counted.items()}
        result["count_error"] = {k: round(v, 4) for k, v in errors.items()}
        for k, v in errors.items():
            result[f"{k}_count_error"] = round(v, 4)
    return result


def format_table(result: dict[str, object]) -> str:
    """A short human-readable table of ``bench_edge``'s result."""
    errors = result.get("count_error") or {}
    assert isinstance(errors, dict)
    rows = [f"{'method':<14}{'frames/s':>10}{'count error':>13}"]
    for method in ("bare", "pipeline", "detector_only", "ultralytics", "supervision"):
        fps = result.get(f"{method}_fps")
        err = errors.get(method)
        rows.append(f"{method:<14}{'-' if fps is None else f'{fps:.1f}':>10}{'-' if err is None else f'{err:.1%}':>13}")
    rows = [r for r in rows if not r.startswith("detector_only") or result.get("detector_only_fps") is not None]
    rows.append(f"pipeline/bare {result.get('pipeline_over_bare')}, pipeline/ultralytics {result.get('pipeline_over_ultralytics', '-')}")
    if result.get("two_stage_over_detector_only") is not None:
        rows.append(f"two-stage pipeline / detector-only pipeline {result['two_stage_over_detector_only']}")
    pairs = (("pipeline_over_ultralytics", "pipeline/ultralytics"), ("two_stage_over_detector_only", "two-stage/detector-only"))
    for key, label in pairs:
        b = result.get(f"{key}_by_block")
        if isinstance(b, dict):
            rows.append(f"{label} block by block: median {b['median']} (quartiles {b['q1']}–{b['q3']}, {b['blocks']} blocks)")
    stages = result.get("pipeline_stage_us")
    if isinstance(stages, dict):
        rows.append("pipeline µs per frame: " + ", ".join(f"{stage} {us}" for stage, us in stages.items()))
    return "\n".join(rows)
