"""``farz train compare A.onnx B.onnx``: accuracy, speed measured side by side, and count error on videos."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2

from device.truth import read_truth, truth_path
from training.evaluate import count_error, evaluate, load_yolo_split
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


def video_count_error(model: Path, videos: list[Path]) -> float | None:
    """Mean count error (see ``training.evaluate.count_error``) over videos that have a truth file."""
    from device.count import count_video
    from device.count_config import settings_for_video

    errors = []
    for video in videos:
        truth_file = truth_path(video)
        if not truth_file.is_file():
            continue
        truth = read_truth(truth_file)
        summary = count_video(video, model, settings_for_video(video, None, None), progress=False)
        errors.append(count_error(summary.counts, truth))
    return round(statistics.mean(errors), 4) if errors else None


def compare(
    a: Path, b: Path, data: Path, videos: list[Path], split: str = "val", threads: int = 1, max_images: int = 0
) -> dict[str, object]:
    """Both models on the same data, timing interleaved, count error on ``videos``; says which is better."""
    ra = evaluate(a, data, split, threads, max_images, progress=False)
    rb = evaluate(b, data, split, threads, max_images, progress=False)
    timing_images = load_yolo_split(data, split).images[:40]
    ms_a, ms_b = side_by_side_ms(a, b, timing_images, threads)
    ra["ms_per_frame"], rb["ms_per_frame"] = round(ms_a, 3), round(ms_b, 3)
    ra["count_error"], rb["count_error"] = video_count_error(a, videos), video_count_error(b, videos)
    map_delta = float(rb["map50"]) - float(ra["map50"])  # type: ignore[arg-type]
    count_delta = None if ra["count_error"] is None or rb["count_error"] is None else float(rb["count_error"]) - float(ra["count_error"])  # type: ignore[arg-type]
    better_accuracy = "b" if map_delta > 0.005 else "a" if map_delta < -0.005 else "same"
    better_counts = None if count_delta is None else "b" if count_delta < -0.005 else "a" if count_delta > 0.005 else "same"
    if better_accuracy == "same" and better_counts in (None, "same"):
        verdict = "b (faster)" if ms_b < ms_a * 0.95 else "a (faster)" if ms_a < ms_b * 0.95 else "neither"
    elif better_counts in (None, "same", better_accuracy):
        verdict = better_accuracy if better_accuracy != "same" else str(better_counts)
    else:
        verdict = f"mixed: {better_accuracy} detects better, {better_counts} counts better"
    return {
        "a": ra,
        "b": rb,
        "map50_delta": round(map_delta, 4),
        "count_error_delta": None if count_delta is None else round(count_delta, 4),
        "speedup_b_over_a": round(ms_a / ms_b, 3) if ms_b else None,
        "better": verdict,
    }
