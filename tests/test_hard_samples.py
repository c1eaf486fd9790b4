"""Hard-sample keeper: which frames qualify, how often, how many are kept, and what is sent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from device.hard_samples import HardSampleKeeper, SampleRules
from vision import Detections, Tracker

NAMES = ("cardboard", "glass")
FRAME = np.full((48, 64, 3), 90, np.uint8)


def one(confidence: float, class_id: int = 0) -> Detections:
    return Detections(np.array([[10, 10, 30, 30]], np.float32), np.array([confidence], np.float32), np.array([class_id], np.int64))


def test_only_uncertain_frames_qualify_and_their_detections_become_pre_labels(tmp_path: Path) -> None:
    keeper = HardSampleKeeper(tmp_path, NAMES, SampleRules(min_interval_s=0))
    assert not keeper.consider(FRAME, one(0.9), Tracker(), "m@1", now=0.0)
    assert not keeper.consider(FRAME, Detections.empty(), Tracker(), "m@1", now=1.0)
    assert keeper.consider(FRAME, one(0.3, 1), Tracker(), "m@1", now=2.0)
    body = keeper.body(keeper.pending()[0], "cam-1")
    assert body["device_id"] == "cam-1" and body["model"] == "m@1" and body["reason"].startswith("low confidence")
    assert body["detections"] == [{"class": "glass", "confidence": 0.3, "xyxy": [10.0, 10.0, 30.0, 30.0]}]
    assert (body["width"], body["height"]) == (64, 48) and body["image_jpeg_b64"]


def test_the_rate_limit_runs_on_the_clock_it_is_given_and_the_first_hard_frame_is_kept(tmp_path: Path) -> None:
    keeper = HardSampleKeeper(tmp_path, NAMES, SampleRules(min_interval_s=10))
    kept = [keeper.consider(FRAME, one(0.3), Tracker(), "m@1", now=t) for t in (0.0, 5.0, 9.9, 10.0, 19.0, 20.5)]
    assert kept == [True, False, False, True, False, True]


def test_at_most_max_samples_stay_on_disk_oldest_dropped_first(tmp_path: Path) -> None:
    keeper = HardSampleKeeper(tmp_path, NAMES, SampleRules(min_interval_s=0, max_samples=3))
    for t in range(5):
        assert keeper.consider(FRAME, one(0.3), Tracker(), f"m@{t}", now=float(t))
    pending = keeper.pending()
    assert [json.loads(p.read_text())["model"] for p in pending] == ["m@2", "m@3", "m@4"]
    assert len(list(tmp_path.glob("*.jpg"))) == 3
    keeper.remove(pending[0])
    assert len(keeper.pending()) == 2 and len(list(tmp_path.glob("*.jpg"))) == 2
