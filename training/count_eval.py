"""``farz train count-eval``: count a set of belt videos with truth and judge the counts per material.

For each video: the counts of ``farz count`` (same settings: the video's ``NAME.yaml``), its count error
(``training.evaluate.count_error``: mean over classes of |counted - true| / true, both directions summed)
and how many items it counted beyond the true number (``extra``: at least that many were counted twice or
were not items). Where the truth lists each item's crossing (rendered videos), also ``items``: every count
paired with the item its track was on (``training.item_match``: paired, twice, no_item, missed,
wrong_direction), and where to look: the frame and place of each count that was not one item counted once
the right way (``wrong_counts``) and of each item missed (``missed_items``). Over the set: the mean of the
videos' errors, the error of the pooled per-class totals, items counted and true, extra counts, the
item-by-item sums, and frames/s.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, fields
from pathlib import Path

from device.truth import VIDEO_SUFFIXES, Counts, TrueCrossing, read_crossings, read_truth, truth_path
from training.evaluate import count_error
from training.item_match import CountedAt, ItemJudgement, ItemMatch, judge_items
from vision import Classifier, MaterialSettings, OnnxDetector
from vision.pipeline import FrameResult

DEFAULT_VIDEOS = Path(__file__).resolve().parent.parent / "datasets" / "belts"


def _total(counts: Counts) -> int:
    return sum(n for per in counts.values() for n in per.values())


def _pool(all_counts: list[Counts]) -> Counts:
    pooled: Counts = {"in": {}, "out": {}}
    for counts in all_counts:
        for direction, per in counts.items():
            for name, n in per.items():
                pooled.setdefault(direction, {})[name] = pooled.setdefault(direction, {}).get(name, 0) + n
    return pooled


def videos_in(paths: list[Path]) -> list[Path]:
    """Every video given, and those inside a given folder (``VIDEO_SUFFIXES``, sorted); a missing file is an error."""
    found: list[Path] = []
    for p in paths:
        found += sorted(v for v in p.iterdir() if v.suffix.lower() in VIDEO_SUFFIXES) if p.is_dir() else [p]
    missing = [v for v in found if not v.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no such video")
    return found


def videos_with_truth(paths: list[Path]) -> list[Path]:
    """Every video given, or inside a given folder (``VIDEO_SUFFIXES``), that has ``NAME.truth.json`` beside it, sorted."""
    with_truth = [v for v in videos_in(paths) if truth_path(v).is_file()]
    if not with_truth:
        raise FileNotFoundError(f"no video with a NAME.truth.json beside it in {', '.join(map(str, paths))}")
    return with_truth


def _sum_items(matches: list[ItemMatch]) -> dict[str, int]:
    """Item-by-item figures summed over videos."""
    return {f.name: sum(getattr(m, f.name) for m in matches) for f in fields(ItemMatch)}


def _where(
    events: list[CountedAt], items: list[TrueCrossing], judged: ItemJudgement
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Where to look: each count that was not one item counted once the right way (frame, box centre 0-1, track,
    direction, what it was, and the item it lay on), and each item missed (frame it crossed, class, centre)."""
    wrong = [
        {
            "frame": e.frame,
            "x": round(e.x, 3),
            "y": round(e.y, 3),
            "track_id": e.track_id,
            "direction": e.direction,
            "verdict": verdict,
            "item_frame": items[c].frame if c >= 0 else None,
        }
        for e, verdict, c in zip(events, judged.verdicts, judged.item_of, strict=True)
        if verdict != "paired"
    ]
    missed = [
        {"frame": items[c].frame, "class": items[c].class_name, "x": round(items[c].x, 3), "y": round(items[c].y, 3)} for c in judged.missed
    ]
    return wrong, missed


class _EventLocator:
    """Called with each frame's result: keeps every count event with its track's box centre (0-1) in that
    frame (a counter counts only tracks seen in the frame, so the box is always there)."""

    def __init__(self) -> None:
        self.events: list[CountedAt] = []

    def __call__(self, result: FrameResult) -> None:
        if not result.events:
            return
        d, (w, h) = result.detections, result.frame_size
        rows = {tid: row for row, tid in enumerate([] if d.tracker_id is None else d.tracker_id.tolist())}
        for e in result.events:
            x1, y1, x2, y2 = d.xyxy[rows[e.track_id]].tolist()
            self.events.append(CountedAt(e.frame_index - 1, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, e.direction, e.track_id))


def count_eval(
    videos: list[Path],
    model: Path,
    classifier: Path | None,
    progress: bool = False,
    confidence: float | None = None,
    material: MaterialSettings | None = None,
) -> dict[str, object]:
    """Count every video and report per video and over the set (see the module docstring); ``confidence``
    replaces each video's detection threshold and ``material`` the crop rules (to choose them by measurement)."""
    from tqdm import tqdm

    from device.count import count_video
    from device.count_config import settings_for_video

    names = Classifier(classifier).names if classifier is not None else OnnxDetector(model).names
    truths = [read_truth(truth_path(video), names) for video in videos]  # every file checked before the first count
    crossings = [read_crossings(truth_path(video)) for video in videos]
    rows = []
    counted_all, truth_all = [], []
    frames = 0
    seconds = 0.0
    matches: list[ItemMatch] = []
    todo = list(zip(videos, truths, crossings, strict=True))
    for video, truth, items in tqdm(todo, desc="videos", unit="video", disable=not progress, leave=False):
        settings = settings_for_video(video, None, None)
        if confidence is not None:
            settings = settings.model_copy(update={"confidence": confidence})
        located = _EventLocator()
        summary = count_video(video, model, settings, progress=False, classifier=classifier, material=material, on_frame=located)
        frames += summary.frames
        seconds += summary.seconds
        counted_all.append(summary.counts)
        truth_all.append(truth)
        rows.append(
            {
                "video": video.name,
                "count_error": round(count_error(summary.counts, truth), 4),
                "counted": _total(summary.counts),
                "true": _total(truth),
                "extra": max(0, _total(summary.counts) - _total(truth)),
                "counts": summary.counts,
                "truth": truth,
            }
        )
        if items is not None:
            judged = judge_items(located.events, items)
            matches.append(judged.summary())
            rows[-1]["items"] = asdict(matches[-1])
            rows[-1]["wrong_counts"], rows[-1]["missed_items"] = _where(located.events, items, judged)
    pooled, pooled_truth = _pool(counted_all), _pool(truth_all)
    return {
        "model": str(model),
        "classifier": None if classifier is None else str(classifier),
        "videos": len(rows),
        "mean_count_error": round(statistics.mean(float(r["count_error"]) for r in rows), 4),  # type: ignore[arg-type]
        "pooled_count_error": round(count_error(pooled, pooled_truth), 4),
        "counted": _total(pooled),
        "true": _total(pooled_truth),
        "extra": sum(int(r["extra"]) for r in rows),  # type: ignore[call-overload]
        "items": _sum_items(matches) if len(matches) == len(rows) else None,
        "pooled_counts": pooled,
        "pooled_truth": pooled_truth,
        "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
        "confidence": confidence,
        "material": None if material is None else material.__dict__,
        "per_video": rows,
    }
