"""Recompute the committed quality baselines for the shipped model: `python tests/baselines/update.py`.

Run it only when the model changes on purpose (a new training run), and say in the commit what moved.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from device.count import count_video  # noqa: E402
from device.count_config import settings_for_video  # noqa: E402
from training.evaluate import count_error, evaluate  # noqa: E402

MODEL = REPO / "models" / "farz-waste.int8.onnx"
OUT = Path(__file__).resolve().parent / "quality.json"


def measure(model: Path = MODEL) -> dict[str, object]:
    videos = {}
    for video in sorted((REPO / "datasets" / "samples").glob("*.mp4")):
        truth = json.loads(video.with_suffix(".truth.json").read_text())["counts"]
        summary = count_video(video, model, settings_for_video(video, None, None), progress=False)
        videos[video.name] = {"counts": summary.counts, "truth": truth, "count_error": round(count_error(summary.counts, truth), 4)}
    quality = evaluate(model, REPO / "datasets" / "eval" / "belt-heldout", progress=False, threads=1)
    return {
        "model": model.name,
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "videos": videos,
        "eval_map50": quality["map50"],
        "eval_map50_95": quality["map50_95"],
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(measure(), indent=1) + "\n")
    print(OUT.read_text())
