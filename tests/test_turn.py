"""A belt seen at a slant is turned upright before detection: the slant by the count line, boxes mapped back to
the frame, and end to end a committed belt video seen by a camera turned 30 degrees counts as it does upright."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.count import belt_turn, count_video
from device.count_config import CountSettings, load_count_settings
from device.truth import read_truth
from training.degrade import DEGRADATIONS, degrade_video
from vision import BeltTurn, LineSpec
from vision.geometry import letterbox
from vision.turn import line_slant

MODEL = Path("models/farz-waste.int8.onnx")
CLASSIFIER = Path("models/farz-material.int8.onnx")


@pytest.mark.parametrize(
    ("line", "size", "slant"),
    [
        ((0, 0.5, 1, 0.5), (640, 480), 0.0),
        ((0.5, 1, 0.5, 0), (640, 480), 0.0),
        ((0, 0, 1, 1), (400, 400), 45.0),
        ((0.2, 0.3, 0.8, 0.3 + 0.6 * 640 / 480 * math.tan(math.radians(20))), (640, 480), 20.0),
        ((0.5, 0.9, 0.5 + 0.8 * 480 / 640 * math.tan(math.radians(25)), 0.1), (640, 480), 25.0),
    ],
)
def test_the_slant_is_the_lines_angle_from_its_nearest_axis_in_pixels(
    line: tuple[float, float, float, float], size: tuple[int, int], slant: float
) -> None:
    assert abs(line_slant(LineSpec(*line), *size)) == pytest.approx(slant)


def test_a_line_near_an_axis_turns_nothing_and_one_at_a_slant_does() -> None:
    assert not BeltTurn(LineSpec(0, 0.45, 1, 0.55)).prepare(640, 480)  # 8.5 degrees
    assert BeltTurn(LineSpec(0, 0.35, 1, 0.65)).prepare(640, 480)  # 24 degrees


def test_settings_turn_by_the_first_line_unless_told_not_to() -> None:
    assert belt_turn(CountSettings(line=(0, 0.3, 1, 0.7))) is not None
    assert belt_turn(CountSettings(line=(0, 0.3, 1, 0.7), turn_upright=False)) is None
    assert belt_turn(CountSettings(lines=[], zones=[{"polygon": [(0, 0), (1, 0), (1, 1)]}])) is None


@settings(max_examples=40, deadline=None)
@given(degrees=st.floats(-44, 44).filter(lambda d: abs(d) >= 10), cx=st.integers(200, 440), cy=st.integers(160, 320))
def test_a_box_upright_on_the_turned_canvas_comes_back_as_the_box_around_the_item(degrees: float, cx: int, cy: int) -> None:
    """An item lying along a belt at a slant: upright on the canvas, and mapped back to the box around it in the frame."""
    frame = np.zeros((480, 640, 3), np.uint8)
    rect = ((float(cx), float(cy)), (90.0, 40.0), degrees)  # along the line, as the line lies (clockwise on screen)
    corners = cv2.boxPoints(rect)
    cv2.fillPoly(frame, [np.round(corners).astype(np.int32)], (255, 255, 255))
    dx, dy = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    turn = BeltTurn(LineSpec(0.5 - 0.3 * dx, 0.5 - 0.3 * dy * 640 / 480, 0.5 + 0.3 * dx, 0.5 + 0.3 * dy * 640 / 480))
    assert turn.prepare(640, 480)
    canvas = turn.apply(frame)
    x, y, w, h = cv2.boundingRect(cv2.findNonZero(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY)))
    assert sorted((w, h)) == pytest.approx([40, 90], abs=5)  # upright there (a pixel or two of edge blur each side)
    back = turn.to_frame(np.array([[x, y, x + w, y + h]], np.float32))[0]
    fx, fy, fw, fh = cv2.boundingRect(np.round(corners).astype(np.int32))
    assert back == pytest.approx([fx, fy, fx + fw, fy + fh], abs=6)


def video_size(video: Path) -> tuple[int, int]:
    capture = cv2.VideoCapture(str(video))
    size = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    return size


def total(counts: dict[str, dict[str, int]]) -> int:
    return sum(sum(by_class.values()) for by_class in counts.values())


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(st.floats(-40, 40).filter(lambda d: abs(d) >= 5), st.sampled_from([(640, 480), (1280, 720), (416, 234)]), st.sampled_from([0, 32]))
def test_the_detectors_input_is_warped_straight_from_the_frame_as_the_turned_canvas_would_be_letterboxed(
    degrees: float, size: tuple[int, int], stride: int
) -> None:
    w, h = size
    rng = np.random.default_rng(int(abs(degrees) * 100))
    frame = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (0, 0), 3.0)  # texture at every scale but the finest
    cv2.rectangle(frame, (w // 3, h // 3), (w // 2, h // 2), (30, 200, 240), -1)
    turn = BeltTurn(LineSpec(0.45, 0.5, 0.55, 0.5 + 0.1 * w / h * math.tan(math.radians(degrees))))
    assert turn.prepare(w, h)
    expected, box = letterbox(turn.apply(frame), (320, 320), stride)
    direct, direct_box = turn.letterboxed(frame, (320, 320), stride)
    assert direct.shape == expected.shape and direct_box == box
    assert np.abs(direct.astype(int) - expected.astype(int)).mean() < 0.5
    picture = turn.picture(frame)
    assert (picture.width, picture.height) == turn.canvas and not picture.made


def test_a_belt_seen_at_a_slant_counts_its_items_as_upright(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """belt-a (11 items `in`) seen by a camera turned 20 degrees (`farz datasets degrade --kinds slant`): every
    item counted `in`, as upright; without the turn the detector takes the slanted belt for items and misses
    what rides on it."""
    video = degrade_video(Path("datasets/samples/belt-a.mp4"), tmp_path, DEGRADATIONS["slant"])
    settings = load_count_settings(video.with_suffix(".yaml"))
    assert abs(line_slant(settings.line_specs()[0], *video_size(video))) == pytest.approx(20.0, abs=0.5)
    true = read_truth(Path("datasets/samples/belt-a.truth.json"))
    with caplog.at_level(logging.WARNING, logger="farz.count"):
        turned = count_video(video, MODEL, settings, progress=False, classifier=CLASSIFIER)
    assert caplog.text.count("the count line lies 20 degrees off the picture's axes: frames are turned upright") == 1
    assert turned.counts["out"] == {} and total(turned.counts) == total(true)
    unturned = count_video(video, MODEL, settings.model_copy(update={"turn_upright": False}), progress=False, classifier=CLASSIFIER)
    assert total(unturned.counts) < total(true)


@settings(max_examples=40, deadline=None)
@given(degrees=st.floats(-44, 44).filter(lambda d: abs(d) >= 10), x=st.floats(0.02, 0.98), y=st.floats(0.02, 0.98))
def test_a_box_centred_on_the_picture_is_kept_and_one_in_the_corners_the_turn_adds_is_not(degrees: float, x: float, y: float) -> None:
    """The turned canvas's corners carry the frame's edges out as streaks, which the detector may box (on empty
    belts seen at a slant: a count at each end of the line); a box counts only with its centre on the picture."""
    line = LineSpec(0.5 - 0.3 * math.tan(math.radians(degrees)), 0.2, 0.5 + 0.3 * math.tan(math.radians(degrees)), 0.8)
    turn = BeltTurn(line, min_degrees=1.0)
    assert turn.prepare(640, 480)
    on_canvas = turn._forward @ np.array([x * 640, y * 480, 1.0])
    box = np.array([[on_canvas[0] - 30, on_canvas[1] - 20, on_canvas[0] + 30, on_canvas[1] + 20]], np.float32)
    assert turn.on_picture(box).tolist() == [True]
    corner = np.array([[0, 0, 40, 30], [turn.canvas[0] - 40, turn.canvas[1] - 30, *turn.canvas]], np.float32)
    assert turn.on_picture(corner).tolist() == [False, False]
    assert turn.on_picture(np.zeros((0, 4), np.float32)).shape == (0,)


def test_a_belt_seen_by_a_rolled_camera_counts_no_streak_at_the_ends_of_the_line(tmp_path: Path) -> None:
    """The committed `right-medium.mp4` (4 of its items in sight) seen by a camera rolled 20 degrees that sees the
    scene to its edges (`farz datasets degrade --kinds roll`): the turn carries the frame's edges out into the
    canvas's corners, and boxes there (streaks, not items) are dropped; counting them gave 6 items."""
    video = degrade_video(Path("datasets/belts/right-medium.mp4"), tmp_path, DEGRADATIONS["roll"])
    settings = load_count_settings(video.with_suffix(".yaml"))
    true = read_truth(video.with_suffix(".truth.json"))
    counted = count_video(video, MODEL, settings, progress=False, classifier=CLASSIFIER)
    assert counted.counts["out"] == {} and total(counted.counts) == total(true) == 4
