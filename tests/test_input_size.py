"""The detector's input size: fixed by the settings, or ``auto`` — larger once the first tracks show small items."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from blob_model import write_blob_model
from hypothesis import given
from hypothesis import strategies as st

from device.count import build_pipeline, count_video
from device.count_config import CountSettings, load_count_settings
from device.truth import read_truth
from vision import Detections, InputSizer, InputSizeRule, OnnxDetector
from vision.errors import ModelError

MODEL = Path("models/farz-waste.int8.onnx")
FRAME = (5000, 400)  # px, a frame wide enough for every test box
CLASSIFIER = Path("models/farz-material.int8.onnx")


def tracked(boxes: list[tuple[float, float, float, float]], ids: list[int]) -> Detections:
    n = len(boxes)
    return Detections(
        np.array(boxes, np.float32).reshape(n, 4), np.full(n, 0.9, np.float32), np.zeros(n, np.int64), np.array(ids, np.int64)
    )


def feed(sizer: InputSizer, side: float, tracks: int, frames: int, ratio: float = 0.25) -> list[object]:
    """``tracks`` square items of ``side`` frame px, each seen ``frames`` times; the changes returned."""
    changes = []
    for _ in range(frames):
        boxes = [(10.0 + 210.0 * t, 10.0, 10.0 + 210.0 * t + side, 10.0 + side) for t in range(tracks)]
        change = sizer.observe(tracked(boxes, list(range(tracks))), FRAME, ratio, 320, 32)
        if change is not None:
            changes.append(change)
    return changes


def test_small_items_enlarge_the_input_once() -> None:
    sizer = InputSizer()
    assert sizer.size(320, dynamic=True) == 320
    changes = feed(sizer, side=64.0, tracks=8, frames=10)  # 16 px in a 320-px input
    assert len(changes) == 1
    change = sizer.change
    assert change is not None and change.old == 320 and change.median_px == 16.0 and change.tracks == 8
    assert change.new == 576  # ceil32(320 * 28 / 16) = 576 (560 rounded up to the stride)
    assert sizer.size(320, dynamic=True) == 576
    assert sizer.size(320, dynamic=False) == 320  # a fixed-shape model always runs at its own size
    assert feed(sizer, side=20.0, tracks=8, frames=10) == []  # decided once: smaller items later change nothing


def test_items_large_enough_keep_the_models_size() -> None:
    sizer = InputSizer()
    assert feed(sizer, side=120.0, tracks=8, frames=10) == []  # 30 px
    assert sizer.change is None and sizer.size(320, dynamic=True) == 320
    assert feed(sizer, side=40.0, tracks=8, frames=10) == []  # already decided


def test_too_few_tracks_decide_nothing() -> None:
    sizer = InputSizer()
    assert feed(sizer, side=40.0, tracks=7, frames=50) == []  # 7 tracks: one short of deciding
    assert sizer.size(320, dynamic=True) == 320
    sizer.reset()
    assert feed(sizer, side=40.0, tracks=8, frames=4) == []  # each seen 4 times: not yet measured


def test_an_item_is_measured_by_its_largest_box() -> None:
    """Entering the picture, an item's box is a sliver cut by the frame's edge: not measured until it is in;
    then its size is the largest box of its track."""
    sizer = InputSizer()
    for f in range(12):
        visible = min(120.0, 12.0 * (f + 1))  # slides in from the left edge over 10 frames
        boxes = [(0.0, 150.0 * t, visible, 150.0 * t + 120.0) for t in range(8)]
        assert sizer.observe(tracked(boxes, list(range(8))), (1280, 1280), 0.25, 320, 32) is None
    for f in range(6):
        boxes = [(10.0 + 12.0 * f, 150.0 * t, 130.0 + 12.0 * f, 150.0 * t + 120.0) for t in range(8)]
        assert sizer.observe(tracked(boxes, list(range(8))), (1280, 1280), 0.25, 320, 32) is None
    assert sizer.change is None  # 30 px: its whole box once inside


def test_the_largest_input_is_capped() -> None:
    sizer = InputSizer(rule=InputSizeRule(largest=640))
    feed(sizer, side=8.0, tracks=8, frames=10)  # 2 px: would want 4480
    assert sizer.size(320, dynamic=True) == 640


def test_a_fixed_size_is_never_changed() -> None:
    sizer = InputSizer(fixed=480)
    assert feed(sizer, side=16.0, tracks=8, frames=10) == []
    assert sizer.size(320, dynamic=True) == 480


@given(st.floats(1.0, 200.0), st.integers(8, 20))
def test_auto_stays_within_the_models_size_and_the_largest(side: float, tracks: int) -> None:
    sizer = InputSizer()
    feed(sizer, side=side, tracks=tracks, frames=6, ratio=1.0)
    size = sizer.size(320, dynamic=True)
    assert 320 <= size <= 640 and size % 32 == 0
    assert (size > 320) == (side < InputSizeRule().small_px)


@pytest.mark.parametrize("value", [300, 96, 2048, "big"])
def test_settings_refuse_a_size_that_is_no_multiple_of_32_in_range(value: object, tmp_path: Path) -> None:
    path = tmp_path / "count.yaml"
    path.write_text(f"line: [0.5, 0, 0.5, 1]\ninput_size: {value}\n")
    with pytest.raises(ValueError, match="input_size"):
        load_count_settings(path)


def test_the_detector_runs_at_the_size_asked_for() -> None:
    detector = OnnxDetector(MODEL)
    frame = np.full((720, 1280, 3), 90, np.uint8)
    assert detector.info.dynamic and detector.input_size == 320
    assert detector.preprocess(frame)[0].shape == (1, 192, 320, 3)
    assert detector.preprocess(frame, 480)[0].shape == (1, 288, 480, 3)
    pipeline = build_pipeline(MODEL, CountSettings(line=(0.5, 0, 0.5, 1), input_size=480), CLASSIFIER)
    assert pipeline.sizer.size(detector.input_size, True) == 480
    assert len(pipeline.process(frame).detections) == 0


def test_a_fixed_size_on_a_fixed_shape_model_is_refused(tmp_path: Path) -> None:
    model = write_blob_model(tmp_path / "blob.onnx")
    with pytest.raises(ModelError, match="input_size 480"):
        build_pipeline(model, CountSettings(input_size=480))


def far_view(video: Path, out: Path) -> Path:
    """``video`` as a camera twice as far away sees it: each frame in the middle of a canvas twice its size,
    filled with the belt's median colour (items half as large in the picture); its count settings copied."""
    capture = cv2.VideoCapture(str(video))
    writer = None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        colour = [int(c) for c in np.median(frame.reshape(-1, 3), axis=0)]
        far = cv2.copyMakeBorder(frame, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_CONSTANT, value=colour)
        if writer is None:
            fps = capture.get(cv2.CAP_PROP_FPS)
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (far.shape[1], far.shape[0]))
        writer.write(far)
    capture.release()
    assert writer is not None
    writer.release()
    shutil.copy(video.with_suffix(".yaml"), out.with_suffix(".yaml"))
    return out


def total(counts: dict[str, dict[str, int]]) -> int:
    return sum(sum(by_class.values()) for by_class in counts.values())


@pytest.mark.slow
def test_a_far_view_enlarges_the_input_and_counts_every_item(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A committed belt seen from twice as far (items about 17 px across in a 320-px input): ``auto`` says it
    enlarges the input, and counts every item, as many as the model's own size does."""
    video = far_view(Path("datasets/belts/wide-right.mp4"), tmp_path / "far.mp4")
    settings = load_count_settings(video.with_suffix(".yaml"))
    with caplog.at_level(logging.WARNING, logger="farz.count"):
        auto = count_video(video, MODEL, settings, progress=False, classifier=CLASSIFIER)
    assert "items are small in the detector's 320-px input" in caplog.text
    fixed = count_video(video, MODEL, settings.model_copy(update={"input_size": 320}), progress=False, classifier=CLASSIFIER)
    true = total(read_truth(Path("datasets/belts/wide-right.truth.json")))
    assert total(auto.counts) == true
    assert total(auto.counts) >= total(fixed.counts)
