"""Recompute the committed quality baselines for the shipped pair: `python tests/baselines/update.py`.

The shipped item detector + material classifier, as `farz count` runs them: counts on the sample videos and on
the committed belt set (`datasets/belts`), both item by item (`farz train count-eval`), and mAP on the held-out
eval scenes (two-stage, plus the detector's own classes for comparison). Run it when a model or a committed video
changes on purpose (a new training run, a new render), and say in the commit what moved.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from device.count import DEFAULT_CLASSIFIER, DEFAULT_MODEL  # noqa: E402
from training.count_eval import DEFAULT_VIDEOS, count_eval, videos_with_truth  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from vision import OnnxDetector  # noqa: E402
from vision.detector import ITEM_CLASSES  # noqa: E402

OUT = Path(__file__).resolve().parent / "quality.json"
EVAL = REPO / "datasets" / "eval" / "belt-heldout"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def measure(model: Path = DEFAULT_MODEL, classifier: Path = DEFAULT_CLASSIFIER) -> dict[str, object]:
    samples = count_eval(sorted((REPO / "datasets" / "samples").glob("*.mp4")), model, classifier)
    videos = {
        row["video"]: {k: row[k] for k in ("counts", "truth", "count_error", "items")}
        for row in samples["per_video"]  # type: ignore[attr-defined]
    }
    belts = count_eval(videos_with_truth([DEFAULT_VIDEOS]), model, classifier)
    two_stage = evaluate(model, EVAL, progress=False, threads=1, classifier=classifier)
    item_detector = OnnxDetector(model).names == ITEM_CLASSES  # names no material: no detector-only figure
    detector_only = None if item_detector else evaluate(model, EVAL, progress=False, threads=1)
    return {
        "model": model.name,
        "sha256": sha256(model),
        "classifier": classifier.name,
        "classifier_sha256": sha256(classifier),
        "videos": videos,
        "belts": {k: belts[k] for k in ("videos", "mean_count_error", "pooled_count_error", "counted", "true", "extra", "items")},
        "belt_counts": {row["video"]: row["counts"] for row in belts["per_video"]},  # type: ignore[attr-defined]
        "eval_map50": two_stage["map50"],
        "eval_map50_95": two_stage["map50_95"],
        "eval_agnostic_ap50": two_stage["agnostic_ap50"],
        "eval_map50_detector_only": None if detector_only is None else detector_only["map50"],
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(measure(), indent=1) + "\n")
    print(OUT.read_text())
