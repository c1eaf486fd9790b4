"""Quality baselines, committed and compared: a change that makes counting or detection worse fails here.

- the counter on scripted scenes with exact truth (fast items, jitter at the line, occlusion gaps,
  several items in view) — independent of any trained model;
- the shipped INT8 pair (item detector + material classifier, as `farz count` runs them): count error on
  the sample videos and on the 24 committed belt videos (`datasets/belts`), and two-stage mAP50 on held-out
  belt scenes, against `tests/baselines/quality.json` (recompute it with `python tests/baselines/update.py`
  when a model changes on purpose);
- the model card names the shipped files' sha256 and classes.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from blob_model import write_blob_model

from device.count import DEFAULT_CLASSIFIER, count_video
from device.count_config import CountSettings

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "tests" / "baselines" / "quality.json"
MODELS = REPO / "models"
COUNT_TOLERANCE = 0.02
MAP_TOLERANCE = 0.02


def scripted_video(path: Path, tracks: list[list[tuple[int, int] | None]], size: tuple[int, int] = (160, 120)) -> None:
    """Frames where item k is drawn at tracks[k][f] (None = hidden); one bright red square each."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 20, size)
    for f in range(max(len(t) for t in tracks)):
        frame = np.full((size[1], size[0], 3), 20, np.uint8)
        for t in tracks:
            if f < len(t) and t[f] is not None:
                x, y = t[f]  # type: ignore[misc]
                cv2.rectangle(frame, (x - 8, y - 8), (x + 8, y + 8), (40, 40, 255), -1)
        writer.write(frame)
    writer.release()


SCENES = {
    "fast item (40 px per frame)": ([[(x, 60) for x in range(-10, 180, 40)]], 1),
    "jitter on the line": (
        [[(x, 60) for x in range(10, 70, 6)] + [(80 + (4 if i % 2 else -4), 60) for i in range(20)] + [(x, 60) for x in range(90, 170, 6)]],
        1,
    ),
    "hidden for 6 frames around the line": ([[(x, 60) if not 70 <= x <= 100 else None for x in range(0, 170, 5)]], 1),
    "three items one after another": (
        [
            [(x, 60) for x in range(-10, 170, 8)]
            + [None] * 3
            + [(x, 60) for x in range(-10, 170, 8)]
            + [None] * 3
            + [(x, 60) for x in range(-10, 170, 8)]
        ],
        3,
    ),
    "back and forth over the line": ([[(x, 60) for x in (*range(40, 120, 8), *range(120, 60, -8), *range(60, 150, 8))]], 1),
}


@pytest.mark.parametrize("scene", list(SCENES))
def test_counter_counts_scripted_scenes_exactly(scene: str, tmp_path: Path) -> None:
    tracks, expected = SCENES[scene]
    video = tmp_path / "scene.avi"
    scripted_video(video, tracks)  # type: ignore[arg-type]
    model = write_blob_model(tmp_path / "blob.onnx")
    summary = count_video(video, model, CountSettings(line=(0.5, 1.0, 0.5, 0.0)), progress=False)
    assert summary.counts == {"in": {"cardboard": expected}, "out": {}}, scene


def shipped_model() -> Path:
    model = MODELS / "farz-waste.int8.onnx"
    if not model.is_file():
        pytest.fail("models/farz-waste.int8.onnx is missing")
    return model


def test_baseline_is_for_the_shipped_model() -> None:
    baseline = json.loads(BASELINE.read_text())
    sha = hashlib.sha256(shipped_model().read_bytes()).hexdigest()
    assert baseline["sha256"] == sha, "the shipped model changed: run `python tests/baselines/update.py` and commit the new baseline"
    classifier_sha = hashlib.sha256(DEFAULT_CLASSIFIER.read_bytes()).hexdigest()
    assert baseline["classifier_sha256"] == classifier_sha, "the shipped classifier changed: run `python tests/baselines/update.py`"


@pytest.mark.parametrize("video", sorted(p.name for p in (REPO / "datasets" / "samples").glob("*.mp4")))
def test_counts_on_sample_videos_are_no_worse_than_the_baseline(video: str) -> None:
    """Count error, and item by item (the truth lists each item's crossing): none counted twice, on no item, the
    wrong way or missed more often than the baseline."""
    from training.count_eval import count_eval

    base = json.loads(BASELINE.read_text())["videos"][video]
    row = count_eval([REPO / "datasets" / "samples" / video], shipped_model(), DEFAULT_CLASSIFIER)["per_video"][0]  # type: ignore[index]
    assert row["truth"] == base["truth"], "the sample's truth changed: run `python tests/baselines/update.py`"
    assert row["count_error"] <= base["count_error"] + COUNT_TOLERANCE, (
        f"{video}: count error {row['count_error']:.3f} > baseline {base['count_error']:.3f}: {row['counts']}"
    )
    for key in ("twice", "no_item", "wrong_direction", "missed"):
        assert row["items"][key] <= base["items"][key], f"{video} {key}: {row['items'][key]} (baseline {base['items'][key]})"


def test_map50_on_held_out_belt_scenes_is_no_worse_than_the_baseline() -> None:
    pytest.importorskip("pycocotools")
    from training.evaluate import evaluate

    base = json.loads(BASELINE.read_text())
    eval_set = REPO / "datasets" / "eval" / "belt-heldout"
    result = evaluate(shipped_model(), eval_set, progress=False, threads=1, classifier=DEFAULT_CLASSIFIER)
    assert float(result["map50"]) >= base["eval_map50"] - MAP_TOLERANCE, f"mAP50 {result['map50']} < baseline {base['eval_map50']}"  # type: ignore[arg-type]
    assert float(result["agnostic_ap50"]) >= base["eval_agnostic_ap50"] - MAP_TOLERANCE  # type: ignore[arg-type]


def test_counts_on_the_committed_belt_videos_are_no_worse_than_the_baseline() -> None:
    from training.count_eval import DEFAULT_VIDEOS, count_eval, videos_with_truth

    videos = videos_with_truth([DEFAULT_VIDEOS])
    assert len(videos) >= 24
    base = json.loads(BASELINE.read_text())["belts"]
    result = count_eval(videos, shipped_model(), DEFAULT_CLASSIFIER)
    assert result["true"] == base["true"], "the belt videos' truth changed: run `python tests/baselines/update.py`"
    assert float(result["mean_count_error"]) <= base["mean_count_error"] + COUNT_TOLERANCE, result["mean_count_error"]  # type: ignore[arg-type]
    assert int(result["extra"]) <= base["extra"], f"{result['extra']} items counted beyond the truth (baseline {base['extra']})"  # type: ignore[call-overload]
    items = result["items"]  # item by item (training.item_match): no item counted twice or the wrong way more often
    assert isinstance(items, dict)
    for key in ("twice", "no_item", "wrong_direction", "missed"):
        assert items[key] <= base["items"][key], f"{key}: {items[key]} (baseline {base['items'][key]})"


def test_model_card_names_the_shipped_files_and_classes() -> None:
    from vision import Classifier, OnnxDetector

    card = (MODELS / "README.md").read_text()

    for name in ("farz-waste.onnx", "farz-waste.int8.onnx", "farz-material.onnx", "farz-material.int8.onnx"):
        sha = hashlib.sha256((MODELS / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}`.*`{sha}`", card), f"models/README.md does not give {name}'s sha256 {sha}"
        names = Classifier(MODELS / name).names if "material" in name else OnnxDetector(MODELS / name).names
        assert f"classes: {', '.join(names)}" in card
