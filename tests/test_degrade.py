"""Pictures made worse: degraded copies of belt videos with their truth (``farz datasets degrade``) and the
training scenes a poorer camera gives (``synth --poor-camera``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.count_config import load_count_settings
from farz.cli import main
from training.degrade import (
    DEGRADATIONS,
    Degradation,
    belt_step,
    belt_stops,
    degrade_video,
    degraded_truth,
    motion_blurred,
    rolled_truth,
    stopped_truth,
    turn_matrix,
    turned_truth,
)
from training.synth import Cutout, poor_camera_look, render_training_image
from vision.turn import line_slant

TRUTH = {
    "counts": {"in": {"metal": 1}, "out": {}},
    "frames": 12,
    "fps": 10,
    "items": 1,
    "line": [0, 0.5, 1, 0.5],
    "crossings": [{"frame": 7, "class": "metal", "direction": "in", "x": 0.5, "y": 0.5, "w": 0.2, "h": 0.2, "vx": 0.0, "vy": 0.07}],
}


def belt_video(folder: Path, frames: int = 12, size: tuple[int, int] = (96, 72)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / "belt.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10, size)
    for f in range(frames):
        frame = np.full((size[1], size[0], 3), 120, np.uint8)
        cv2.rectangle(frame, (40, 4 + f * 5), (56, 20 + f * 5), (40, 160, 220), -1)
        writer.write(frame)
    writer.release()
    (folder / "belt.truth.json").write_text(json.dumps(TRUTH))
    (folder / "belt.yaml").write_text("line: [0, 0.5, 1, 0.5]\n")
    return video


def frames_of(video: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def test_half_the_frame_rate_keeps_every_other_frame_and_moves_the_truth_to_it() -> None:
    truth = degraded_truth(TRUTH, 2, 6, 5.0)
    crossing = truth["crossings"][0]  # type: ignore[index]
    assert (truth["frames"], truth["fps"], crossing["frame"], crossing["vy"]) == (6, 5.0, 3, 0.14)
    assert (crossing["x"], crossing["y"], crossing["w"]) == (0.5, 0.5, 0.2)  # 0-1 of the frame: unchanged
    assert TRUTH["crossings"][0]["frame"] == 7  # type: ignore[index]  # the original is not touched


def test_each_degradation_writes_a_copy_with_settings_and_truth(tmp_path: Path) -> None:
    video = belt_video(tmp_path / "in")
    original = frames_of(video)
    reencoded = frames_of(degrade_video(video, tmp_path / "plain", Degradation("plain", "the video written again", lambda f, rng: f)))
    for name, degradation in DEGRADATIONS.items():
        out = degrade_video(video, tmp_path / name, degradation, seed=1)
        frames = frames_of(out)
        held = round(degradation.stop_seconds * 10)  # one stop, at 10 frames/s
        assert len(frames) == len(original) // degradation.frame_step + held, name
        truth = json.loads(out.with_suffix(".truth.json").read_text())
        assert truth["frames"] == len(frames) and truth["counts"] == TRUTH["counts"]
        if degradation.degrees:  # the picture turned (onto a larger canvas, or within its frame), the line with it
            spec = load_count_settings(out.with_suffix(".yaml")).line_specs()[0]
            h, w = frames[0].shape[:2]
            assert ((w, h) == original[0].shape[1::-1]) if degradation.fill else ((w, h) > original[0].shape[1::-1])
            assert abs(line_slant(spec, w, h)) == pytest.approx(degradation.degrees, abs=0.5), name
            continue
        assert (out.with_suffix(".yaml")).read_text() == "line: [0, 0.5, 1, 0.5]\n"
        if name == "upscale":
            assert frames[0].shape == (180, 240, 3)
        elif name != "half-fps":
            assert frames[0].shape == original[0].shape
            change = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, reencoded, strict=False)])
            assert change > 0.5, name  # it did change the picture, more than writing the video again does
    dark = frames_of(tmp_path / "dark" / "belt.mp4")[0]
    assert dark.mean() < 0.5 * original[0].mean()


def test_a_turned_picture_turns_its_items_with_it() -> None:
    """An item crossing at the picture's centre stays at the canvas's centre; its velocity turns with the picture
    (counterclockwise on screen: moving right, it moves right and up), its box grows to the box around it."""
    truth = {"line": [0.5, 0, 0.5, 1], "crossings": [{"frame": 3, "x": 0.5, "y": 0.5, "w": 0.1, "h": 0.1, "vx": 0.01, "vy": 0.0}]}
    out = turned_truth(truth, 400, 300, 30.0)
    (crossing,) = out["crossings"]  # type: ignore[misc]
    assert (crossing["x"], crossing["y"]) == pytest.approx((0.5, 0.5))
    assert crossing["vx"] > 0 and crossing["vy"] < 0
    _, (cw, ch) = turn_matrix(400, 300, 30.0)
    assert math.degrees(math.atan2(-crossing["vy"] * ch, crossing["vx"] * cw)) == pytest.approx(30.0, abs=0.5)
    assert out["line"][0] != out["line"][2]  # type: ignore[index]  # the line turned too


def test_a_rolled_camera_sees_the_scene_to_its_edges_and_items_out_of_sight_leave_the_truth() -> None:
    """``roll``: the picture turned and enlarged within its frame (no empty corner); the line turned and cut to the
    frame; an item crossing at the centre stays there, one crossing near a corner goes out of sight."""
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    out = DEGRADATIONS["roll"].apply(frame, np.random.default_rng(0))
    assert out.shape == frame.shape and out[:3, :3].std() > 10 and out[-3:, -3:].std() > 10  # scene, not a flat fill
    near_corner = {"frame": 9, "class": "glass", "direction": "in", "x": 0.97, "y": 0.55, "w": 0.1, "h": 0.1, "vx": 0.0, "vy": 0.07}
    truth = {**TRUTH, "counts": {"in": {"metal": 1, "glass": 1}, "out": {}}, "crossings": [*TRUTH["crossings"], near_corner]}  # type: ignore[list-item]
    rolled = rolled_truth(truth, 160, 120, 20.0)
    (kept,) = rolled["crossings"]  # type: ignore[misc]
    assert (kept["x"], kept["y"]) == pytest.approx((0.5, 0.5)) and kept["w"] > 0.2  # enlarged, and the box around it
    assert rolled["counts"] == {"in": {"metal": 1}, "out": {}} and rolled["items"] == 1
    x1, y1, x2, y2 = rolled["line"]  # type: ignore[misc]
    assert all(0 <= v <= 1 for v in (x1, y1, x2, y2)) and min(x1, x2) == pytest.approx(0, abs=1e-6)  # cut at the frame's edges
    assert abs(math.degrees(math.atan2((y2 - y1) * 120, (x2 - x1) * 160))) == pytest.approx(20.0, abs=0.5)


def test_the_command_refuses_an_unknown_degradation_and_names_the_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    belt_video(tmp_path / "in")
    code = main(["datasets", "degrade", "--videos", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--kinds", "dark,fog"])
    err = capsys.readouterr().err
    assert code != 0 and "fog" in err and "noise" in err
    assert not (tmp_path / "out").exists()
    assert main(["datasets", "degrade", "--videos", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--kinds", "noise"]) == 0
    assert (tmp_path / "out" / "noise" / "belt.truth.json").is_file()


def test_a_poorer_camera_changes_the_pixels_of_a_scene_and_keeps_its_labels() -> None:
    rgba = np.zeros((50, 36, 4), np.uint8)
    rgba[..., 1] = 230
    rgba[4:46, 4:32, 3] = 255
    cutouts = [Cutout(rgba, 0, "g")]
    for seed in range(6):
        plain = render_training_image(cutouts, np.random.default_rng(seed), size=(240, 180), crowded=0.3)
        poor = render_training_image(cutouts, np.random.default_rng(seed), size=(240, 180), crowded=0.3, poor_camera=1.0)
        assert poor[1].boxes == plain[1].boxes
        assert poor[0].shape == plain[0].shape and poor[0].dtype == np.uint8
        assert not np.array_equal(poor[0], plain[0])
    image = np.full((60, 80, 3), 128, np.uint8)
    looks = [poor_camera_look(image, np.random.default_rng(s)) for s in range(40)]
    means = [float(x.mean()) for x in looks]
    assert min(means) < 90 and max(means) > 160  # dim and over-exposed halls both occur
    assert max(float(x.std()) for x in looks) > 5  # and noise


def test_motion_blur_smears_along_the_belt_and_not_across_it() -> None:
    """A belt moving down 10 px a frame: an edge across the belt (horizontal) spreads over about 5 px, an edge along
    it (vertical) stays sharp."""
    frame = np.zeros((60, 60, 3), np.uint8)
    frame[30:, :] = 200  # an edge across the belt
    frame[:, 30:, 1] = 200  # an edge along it, in green
    out = motion_blurred(frame, (0.0, 10.0)).astype(int)
    across = out[:, 10, 0]  # down the picture, through the horizontal edge
    along = out[10, :, 1]  # across the picture, through the vertical edge
    assert 4 <= int(((across > 10) & (across < 190)).sum()) <= 6
    assert int(((along > 10) & (along < 190)).sum()) == 0
    assert motion_blurred(frame, (0.5, 0.5)) is frame  # under a pixel's smear: the frame as it was


def test_a_shaken_camera_moves_each_frame_a_little_and_the_truth_not_at_all(tmp_path: Path) -> None:
    video = belt_video(tmp_path / "in", frames=8)
    out = degrade_video(video, tmp_path / "shake", DEGRADATIONS["shake"], seed=3)
    assert json.loads(out.with_suffix(".truth.json").read_text())["crossings"] == TRUTH["crossings"]
    shifts = set()
    for before, after in zip(frames_of(video), frames_of(out), strict=True):
        item_before, item_after = np.argwhere(before[:, :, 2] > 180), np.argwhere(after[:, :, 2] > 180)
        shift = item_after.mean(axis=0) - item_before.mean(axis=0)
        assert np.all(np.abs(shift) <= 0.01 * 96 + 0.6)  # 1 % of the long side, and a pixel's rounding
        shifts.add(tuple(np.round(shift, 1)))
    assert len(shifts) > 1


def test_motion_blur_needs_the_belts_motion_from_the_truth(tmp_path: Path) -> None:
    video = belt_video(tmp_path / "in")
    video.with_suffix(".truth.json").unlink()
    with pytest.raises(ValueError, match="belt's motion"):
        degrade_video(video, tmp_path / "out", DEGRADATIONS["motion-blur"])
    code = main(["datasets", "degrade", "--videos", str(video), "--out", str(tmp_path / "all"), "--kinds", "dark,motion-blur"])
    assert code == 3 and not (tmp_path / "all").exists()  # refused before anything is written
    assert belt_step(TRUTH, 96, 72) == pytest.approx((0.0, 0.07 * 72))  # the drawn item moves 5 px a frame


def test_the_belt_stops_before_every_third_item_crosses_and_the_truth_waits_for_it() -> None:
    crossings = [{"frame": f, "x": 0.5, "y": 0.5, "w": 0.2, "h": 0.2, "vx": 0.0, "vy": 0.02} for f in (20, 40, 60, 80, 100, 103)]
    truth = {"crossings": crossings}
    stops = belt_stops(truth, 30)
    # items 1 and 4 (frames 20 and 80): their centres half their length (0.1 / 0.02 = 5 frames) before the line;
    # item 7 would stop at 98, within 4 frames of the item crossing at 100: left out
    assert stops == {15: 30, 75: 30}
    moved = stopped_truth(truth, stops)["crossings"]
    assert [c["frame"] for c in moved] == [50, 70, 90, 140, 160, 163]  # type: ignore[index]
    assert stopped_truth(truth, {}) is truth


def test_a_stopped_belt_holds_its_picture_with_fresh_noise(tmp_path: Path) -> None:
    video = belt_video(tmp_path / "in")
    out = degrade_video(video, tmp_path / "stop-go", DEGRADATIONS["stop-go"], seed=2)
    frames = frames_of(out)
    held = round(2.0 * 10)  # 2 s at 10 frames/s
    truth = json.loads(out.with_suffix(".truth.json").read_text())
    assert len(frames) == 12 + held and truth["frames"] == len(frames)
    assert truth["crossings"][0]["frame"] == 7 + held  # the item crosses once the belt moves again
    stop = 7 - 2  # its centre 0.1 / 0.07 of a frame's travel before the line: the 2 frames' least
    still = [np.abs(frames[stop + k].astype(int) - frames[stop].astype(int)).mean() for k in range(1, held + 1)]
    assert max(still) < 3.0 and len({round(float(v), 3) for v in still}) > 1  # the same picture, not the same pixels
