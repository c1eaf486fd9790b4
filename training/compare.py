"""``farz train compare A.onnx B.onnx``: two detectors as ``farz count`` runs them (two-stage with a classifier):
accuracy, speed measured side by side, counts item by item on belt videos, false items on empty belt, and
which is better on every figure."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2

from device.truth import truth_path
from training.evaluate import evaluate, load_yolo_split
from vision import DetectorSettings, OnnxDetector


def side_by_side_ms(a: Path, b: Path, images: list[Path], threads: int, rounds: int = 3) -> tuple[float, float]:
    """Median ms of ``session.run`` for each model, alternating the two on the same inputs."""
    detectors = [OnnxDetector(p, DetectorSettings(threads=threads)) for p in (a, b)]
    frames = [f for f in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in images) if f is not None]
    blobs = [[d.preprocess(f)[0] for f in frames] for d in detectors]
    times: list[list[float]] = [[], []]
    for d, bl in zip(detectors, blobs, strict=True):
        d.infer(bl[0])  # warm-up
    for _ in range(rounds):
        for i in range(len(frames)):
            for k, d in enumerate(detectors):
                t0 = time.perf_counter()
                d.infer(blobs[k][i])
                times[k].append((time.perf_counter() - t0) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def empty_belt_false_items(model: Path, classifier: Path | None, videos: list[Path]) -> dict[str, float] | None:
    """False items on footage of empty belt, as ``farz device check-scene`` finds them (each video's
    ``NAME.yaml`` for its line): tracks seen in 3 frames or more, items counted, minutes; None without videos."""
    from device.count import build_pipeline
    from device.count_config import settings_for_video
    from device.scene_check import check_scene
    from device.sources import VideoFileSource

    if not videos:
        return None
    tracks = counted = 0
    seconds = 0.0
    for video in videos:
        pipeline = build_pipeline(model, settings_for_video(video, None, None), classifier)
        with VideoFileSource(video) as frames:
            fps = frames.info.fps or 15.0
            report = check_scene(frames, pipeline, fps, (frames.info.frame_count or 10**7) / fps, str(video))
        tracks += len(report.false_items)
        counted += sum(n for per in report.counted.values() for n in per.values())
        seconds += report.seconds
    minutes = seconds / 60
    per_minute = round(counted / minutes, 3) if minutes else 0.0
    return {"minutes": round(minutes, 2), "false_tracks": tracks, "false_counts": counted, "false_counts_per_minute": per_minute}


# (figure, where it is in a model's result, True when higher is better)
FIGURES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("mAP50", ("map50",), True),
    ("agnostic AP50", ("agnostic_ap50",), True),
    ("item recall", ("item_recall",), True),
    ("count error", ("counts", "mean_count_error"), False),
    ("items counted twice", ("counts", "items", "twice"), False),
    ("items missed", ("counts", "items", "missed"), False),
    ("counts on no item", ("counts", "items", "no_item"), False),
    ("counted the wrong way", ("counts", "items", "wrong_direction"), False),
    ("false counts on empty belt", ("empty_belt", "false_counts"), False),
)
MARGIN = 0.005  # a difference within this (in the figure's own units; counts are whole numbers) is a tie


def _figure(result: dict[str, object], path: tuple[str, ...]) -> float | None:
    value: object = result
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)  # type: ignore[arg-type]


def verdict(ra: dict[str, object], rb: dict[str, object]) -> tuple[str, dict[str, str]]:
    """Which model is better on each figure both have (``a``, ``b`` or ``same``), and overall: the one that is
    no worse on any figure and better on one, else ``mixed: …``, else ``neither``."""
    winners: dict[str, str] = {}
    for name, path, higher in FIGURES:
        va, vb = _figure(ra, path), _figure(rb, path)
        if va is None or vb is None:
            continue
        gain = (vb - va) if higher else (va - vb)
        winners[name] = "b" if gain > MARGIN else "a" if gain < -MARGIN else "same"
    better = set(winners.values()) - {"same"}
    if len(better) == 1:
        return better.pop(), winners
    if not better:
        return "neither", winners
    a_wins = ", ".join(n for n, w in winners.items() if w == "a")
    b_wins = ", ".join(n for n, w in winners.items() if w == "b")
    return f"mixed: a better on {a_wins}; b better on {b_wins}", winners


def compare(
    a: Path,
    b: Path,
    data: Path,
    videos: list[Path],
    split: str = "val",
    threads: int = 1,
    max_images: int = 0,
    classifier: Path | None = None,
    empty: list[Path] | None = None,
) -> dict[str, object]:
    """Both detectors on the same data — two-stage with ``classifier``, as ``farz count`` runs them — timing
    interleaved, counts item by item on ``videos`` (those with a truth file) and false items on ``empty``
    belt videos; which is better on every figure both have."""
    from training.count_eval import count_eval

    with_truth = [v for v in videos if truth_path(v).is_file()]
    results = []
    for model in (a, b):
        r = evaluate(model, data, split, threads, max_images, progress=False, classifier=classifier)
        counts = count_eval(with_truth, model, classifier) if with_truth else None
        r["counts"] = counts
        r["count_error"] = counts["mean_count_error"] if counts is not None else None
        r["empty_belt"] = empty_belt_false_items(model, classifier, empty or [])
        results.append(r)
    ra, rb = results
    timing_images = load_yolo_split(data, split).images[:40]
    ms_a, ms_b = side_by_side_ms(a, b, timing_images, threads)
    ra["ms_per_frame"], rb["ms_per_frame"] = round(ms_a, 3), round(ms_b, 3)
    map_delta = float(rb["map50"]) - float(ra["map50"])  # type: ignore[arg-type]
    count_delta = None if ra["count_error"] is None or rb["count_error"] is None else float(rb["count_error"]) - float(ra["count_error"])  # type: ignore[arg-type]
    better, winners = verdict(ra, rb)
    if better == "neither":
        better = "b (faster)" if ms_b < ms_a * 0.95 else "a (faster)" if ms_a < ms_b * 0.95 else "neither"
    return {
        "a": ra,
        "b": rb,
        "classifier": None if classifier is None else str(classifier),
        "map50_delta": round(map_delta, 4),
        "count_error_delta": None if count_delta is None else round(count_delta, 4),
        "speedup_b_over_a": round(ms_a / ms_b, 3) if ms_b else None,
        "figures": winners,
        "better": better,
    }
