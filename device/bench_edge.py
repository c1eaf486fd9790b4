"""``farz bench edge``: frames/s and count error of four ways to count, on the same frames, in one run.

- ``bare``: letterbox + ``session.run`` only — the ceiling any pipeline on this model can reach;
- ``pipeline``: the farz pipeline (detect, track, count) writing every event as a JSON line;
- ``ultralytics``: ``ultralytics.solutions.ObjectCounter`` on the same ONNX file (training extra);
- ``supervision``: ByteTrack (``trackers.ByteTrackTracker``, which replaced ``sv.ByteTrack`` in
  supervision 0.31) + ``supervision.LineZone`` fed farz's detections.

Frames are decoded into memory first so that decoding costs no method anything. Count error is the
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
from pathlib import Path

import numpy as np

from device.count import build_pipeline, counts_by_direction
from device.count_config import CountSettings, settings_for_video
from device.sources import Frame, VideoFileSource

Counts = dict[str, dict[str, int]]


def load_frames(video: Path, max_frames: int = 0) -> list[Frame]:
    """Every frame of ``video`` (or the first ``max_frames``) in memory."""
    frames: list[Frame] = []
    with VideoFileSource(video) as source:
        for frame in source:
            frames.append(frame)
            if max_frames and len(frames) >= max_frames:
                break
    return frames


def count_error(counts: Counts, truth: Counts) -> float:
    """Mean relative absolute error of per-class totals (both directions summed)."""

    def totals(c: Counts) -> dict[str, int]:
        out: dict[str, int] = {}
        for per_class in c.values():
            for name, n in per_class.items():
                out[name] = out.get(name, 0) + n
        return out

    got, want = totals(counts), totals(truth)
    classes = sorted(set(got) | set(want))
    if not classes:
        return 0.0
    return float(np.mean([abs(got.get(c, 0) - want.get(c, 0)) / max(want.get(c, 0), 1) for c in classes]))


WARMUP_FRAMES = 10


def _timed(frames: list[Frame], step: Callable[[Frame], object], warmup: Callable[[Frame], object] | None = None) -> float:
    """Frames/s of ``step`` over ``frames``, after ``warmup`` (default: ``step``) ran on a few of them."""
    for frame in frames[:WARMUP_FRAMES]:
        (warmup or step)(frame)
    start = time.perf_counter()
    for frame in frames:
        step(frame)
    return len(frames) / (time.perf_counter() - start)


def _elapsed(frames: list[Frame], step: Callable[[Frame], object]) -> float:
    start = time.perf_counter()
    for frame in frames:
        step(frame)
    return time.perf_counter() - start


def run_bare_and_pipeline(model: Path, settings: CountSettings, frames: list[Frame]) -> tuple[float, float, Counts]:
    """Frames/s of bare ``preprocess + session.run`` and of the full farz pipeline (writing every event
    as a JSON line), interleaved frame by frame so both see the same machine load; and the counts.

    The two run on separate sessions of the same model; which goes first alternates every frame.
    """
    bare = build_pipeline(model, settings).detector
    pipeline = build_pipeline(model, settings)
    sink = io.StringIO()
    for frame in frames[:WARMUP_FRAMES]:
        bare.infer(bare.preprocess(frame)[0])
        pipeline.detector.infer(pipeline.detector.preprocess(frame)[0])  # warms the session, leaves no track state
    spent = [0.0, 0.0]

    def run_bare(frame: Frame) -> None:
        t0 = time.perf_counter()
        bare.infer(bare.preprocess(frame)[0])
        spent[0] += time.perf_counter() - t0

    def run_pipeline(frame: Frame) -> None:
        t0 = time.perf_counter()
        for e in pipeline.process(frame).events:
            sink.write(json.dumps({"line": e.line, "class": e.class_name, "direction": e.direction, "track_id": e.track_id}) + "\n")
        spent[1] += time.perf_counter() - t0

    for i, frame in enumerate(frames):
        for step in (run_bare, run_pipeline) if i % 2 == 0 else (run_pipeline, run_bare):
            step(frame)
    return len(frames) / spent[0], len(frames) / spent[1], counts_by_direction(pipeline.totals())


def run_supervision(model: Path, settings: CountSettings, frames: list[Frame], fps: float) -> tuple[float, Counts]:
    """Frames/s and counts of supervision's ByteTrack + LineZone on farz detections."""
    import supervision as sv
    from trackers import ByteTrackTracker

    detector = build_pipeline(model, settings).detector
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

    fps_measured = len(frames) / _elapsed(frames, step)
    return fps_measured, counts


def run_ultralytics(model: Path, settings: CountSettings, frames: list[Frame]) -> tuple[float, Counts]:
    """Frames/s and counts of Ultralytics' ObjectCounter on the same ONNX model, offline."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_VERBOSE"] = "False"  # its warnings go to stdout, where --json prints one object
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "farz-ultralytics"))
    from ultralytics import solutions

    h, w = frames[0].shape[:2]
    spec = settings.line_specs()[0]
    # The model's own input size: Ultralytics would run a dynamic-input ONNX model at its default 640.
    imgsz = max(build_pipeline(model, settings).detector.info.imgsz)
    common = {"model": str(model), "show": False, "verbose": False, "conf": settings.confidence, "imgsz": imgsz}
    counter = solutions.ObjectCounter(region=[(spec.x1 * w, spec.y1 * h), (spec.x2 * w, spec.y2 * h)], **common)
    warm = solutions.ObjectCounter(region=counter.region, **common)
    fps = _timed(frames, counter, warmup=warm)
    counts: Counts = {"in": {}, "out": {}}
    for name, per in counter.classwise_count.items():
        for key, direction in (("IN", "in"), ("OUT", "out")):
            if per.get(key):
                counts[direction][str(name)] = int(per[key])
    return fps, counts


def bench_edge(video: Path, model: Path, truth_path: Path | None = None, max_frames: int = 0) -> dict[str, object]:
    """Run every method on the same in-memory frames; returns the JSON-ready result."""
    from device.sources import probe_video

    info = probe_video(video)
    settings = settings_for_video(video, None, None)
    frames = load_frames(video, max_frames)
    truth_path = truth_path or video.with_suffix(".truth.json")
    truth: Counts | None = json.loads(truth_path.read_text())["counts"] if truth_path.is_file() and not max_frames else None
    result: dict[str, object] = {"video": str(video), "model": str(model), "frames": len(frames)}
    bare_fps, pipeline_fps, pipeline_counts = run_bare_and_pipeline(model, settings, frames)
    result["bare_fps"] = round(bare_fps, 2)
    result["pipeline_fps"] = round(pipeline_fps, 2)
    result["pipeline_counts"] = pipeline_counts
    sv_fps, sv_counts = run_supervision(model, settings, frames, info.fps)
    result["supervision_fps"], result["supervision_counts"] = round(sv_fps, 2), sv_counts
    try:
        ul_fps, ul_counts = run_ultralytics(model, settings, frames)
        result["ultralytics_fps"], result["ultralytics_counts"] = round(ul_fps, 2), ul_counts
    except ImportError:
        result["ultralytics_fps"], result["ultralytics_counts"] = None, None
    result["pipeline_over_bare"] = round(pipeline_fps / float(result["bare_fps"]), 3)  # type: ignore[arg-type]
    if result["ultralytics_fps"]:
        result["pipeline_over_ultralytics"] = round(pipeline_fps / float(result["ultralytics_fps"]), 3)  # type: ignore[arg-type]
    if truth is not None:
        result["truth"] = truth
        errors = {"pipeline": count_error(pipeline_counts, truth), "supervision": count_error(sv_counts, truth)}
        if result["ultralytics_counts"] is not None:
            errors["ultralytics"] = count_error(result["ultralytics_counts"], truth)  # type: ignore[arg-type]
        result["count_error"] = {k: round(v, 4) for k, v in errors.items()}
        for k, v in errors.items():
            result[f"{k}_count_error"] = round(v, 4)
    return result


def format_table(result: dict[str, object]) -> str:
    """A short human-readable table of ``bench_edge``'s result."""
    errors = result.get("count_error") or {}
    assert isinstance(errors, dict)
    rows = [f"{'method':<14}{'frames/s':>10}{'count error':>13}"]
    for method in ("bare", "pipeline", "ultralytics", "supervision"):
        fps = result.get(f"{method}_fps")
        err = errors.get(method)
        rows.append(f"{method:<14}{'-' if fps is None else f'{fps:.1f}':>10}{'-' if err is None else f'{err:.1%}':>13}")
    rows.append(f"pipeline/bare {result.get('pipeline_over_bare')}, pipeline/ultralytics {result.get('pipeline_over_ultralytics', '-')}")
    return "\n".join(rows)
