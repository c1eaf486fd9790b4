"""Belts seen by a tilted wide-angle camera: the camera model, the training scenes it makes, and the second
video renderer (``farz datasets camera-belt``) with its truth."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.camera import Camera
from training.camera_belts import CameraBeltSpec, render_camera_video
from training.synth import Cutout, draw_stains, in_two_tones, render_training_image

NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")


def green_items() -> list[Cutout]:
    """Saturated green items of every class, a colour no belt, floor or frame has."""
    items = []
    for class_id in range(len(NAMES)):
        rgba = np.zeros((50, 36, 4), np.uint8)
        rgba[..., 1] = 230
        rgba[4:46, 4:32, 3] = 255
        items.append(Cutout(rgba, class_id, f"g{class_id}"))
    return items


def green(image: np.ndarray) -> np.ndarray:
    b, g, r = (image[..., i].astype(np.int32) for i in range(3))
    return np.asarray((g > r + 60) & (g > b + 60))


@pytest.mark.parametrize("distortion", [0.0, 0.12])
def test_the_camera_maps_points_where_it_renders_them_and_shows_the_far_side_smaller(distortion: float) -> None:
    cam = Camera(320, 240, tilt=0.4, distortion=distortion)
    for x, y in (
        (cam.canvas_w / 2, cam.canvas_h / 2),
        (cam.canvas_w * 0.35, cam.canvas_h * 0.2),
        (cam.canvas_w * 0.6, cam.canvas_h * 0.85),
    ):
        canvas = np.zeros((cam.canvas_h, cam.canvas_w), np.float32)
        cv2.circle(canvas, (round(x), round(y)), 4, 1.0, -1)
        seen = cam.render(canvas, outside=0.0)
        ys, xs = np.nonzero(seen > 0.5)
        px, py = cam.to_image(np.float32([[x, y]]))[0]
        assert abs(xs.mean() - px) < 1.0 and abs(ys.mean() - py) < 1.0
    far, near = (cam.to_image(np.float32([[cam.canvas_w / 2 - 20, v], [cam.canvas_w / 2 + 20, v]])) for v in (20, cam.canvas_h - 20))
    assert np.ptp(far[:, 0]) < 0.85 * np.ptp(near[:, 0])  # the same 40 px of belt look smaller far away


def test_camera_scenes_box_each_item_where_the_camera_shows_it_and_leave_other_scenes_as_they_were() -> None:
    cutouts = green_items()
    a_rng, b_rng = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(4):  # camera=0 and two_tone=0 draw nothing extra: older recipes render the same scenes
        a = render_training_image(cutouts, a_rng, size=(240, 180), closeup=0.2, crowded=0.3)
        b = render_training_image(cutouts, b_rng, size=(240, 180), closeup=0.2, crowded=0.3, camera=0.0, two_tone=0.0)
        assert np.array_equal(a[0], b[0]) and a[1].boxes == b[1].boxes
    rng = np.random.default_rng(5)
    boxes = 0
    for _ in range(12):
        image, labels = render_training_image(cutouts, rng, size=(240, 180), camera=1.0, crowded=0.3, min_visible=0.6)
        mask = green(image)
        h, w = mask.shape
        for x, y, bw, bh in labels.boxes:
            assert all(0 <= v <= 1 + 1e-6 for v in (x, y, bw, bh))
            x0, y0 = max(0, int((x - bw / 2) * w) - 3), max(0, int((y - bh / 2) * h) - 3)
            x1, y1 = min(w, int((x + bw / 2) * w) + 3), min(h, int((y + bh / 2) * h) + 3)
            ys, xs = np.nonzero(mask[y0:y1, x0:x1])
            assert len(xs) > 0.3 * bw * w * bh * h, "the box lies on the item"
            assert np.ptp(xs) + 1 >= 0.8 * bw * w and np.ptp(ys) + 1 >= 0.8 * bh * h, "the box is tight round what is seen"
            boxes += 1
    assert boxes >= 20


def test_camera_scenes_include_empty_belts_and_stains_with_soft_edges_as_negatives() -> None:
    rng = np.random.default_rng(8)
    empty = sum(not render_training_image(green_items(), rng, size=(160, 120), camera=1.0)[1].boxes for _ in range(60))
    assert 1 <= empty <= 15  # about one belt in ten has nothing on it: cleats, stains, frame and floor only
    stained = 0
    for seed in range(20):
        belt = np.full((200, 120, 3), 150.0, np.float32)
        draw_stains(belt, np.random.default_rng(seed))
        change = np.abs(belt - 150.0).max(axis=2)
        if (change > 20).any():
            stained += 1
            assert (change > 20).mean() < 0.5, "a stain is a blot, not the belt"
            assert ((change > 2) & (change < 0.5 * change.max())).sum() > 10, "its edge fades into the belt"
    assert stained >= 10


def test_an_item_in_two_tones_keeps_its_outline_and_changes_tone_on_one_side_only() -> None:
    item = np.zeros((60, 80, 4), np.uint8)
    item[..., :3] = 120
    alpha = np.zeros((60, 80), np.uint8)
    cv2.ellipse(alpha, (40, 30), (36, 24), 0, 0, 360, 255, -1)
    item[..., 3] = alpha
    for seed in range(10):
        toned = in_two_tones(item, np.random.default_rng(seed))
        assert np.array_equal(toned[..., 3], item[..., 3]), "the outline is the item's"
        changed = (np.abs(toned[..., :3].astype(int) - 120).max(axis=2) > 15) & (item[..., 3] > 0)
        share = changed.sum() / (item[..., 3] > 0).sum()
        assert 0.1 < share < 0.9, "one side of a line, not all of it nor none"
        ys, xs = np.nonzero(item[..., 3] > 0)
        inside = changed[ys, xs]
        best = len(xs)
        for theta in np.linspace(0, np.pi, 180, endpoint=False):  # the best straight split of toned from untoned pixels
            order = np.argsort(xs * np.cos(theta) + ys * np.sin(theta))
            toned_first = np.concatenate([[0], np.cumsum(inside[order])])  # toned among the first k
            untoned_after = np.concatenate([np.cumsum(~inside[order][::-1])[::-1], [0]])  # untoned from k on
            best = min(best, int((toned_first + untoned_after).min()), int((len(xs) - toned_first - untoned_after).min()))
        assert best / len(xs) < 0.03, "one side of a straight line, but for its soft edge"


@pytest.mark.parametrize("direction", ["down", "up", "left", "right"])
def test_camera_belt_truth_lists_every_item_once_where_the_camera_shows_it(tmp_path: Path, direction: str) -> None:
    spec = CameraBeltSpec(width=200, height=150, fps=10, seconds=10, direction=direction, speed=8, rate=1.5, halo=0.5, seed=3)
    truth = render_camera_video([(c.rgba, c.class_id) for c in green_items()], NAMES, spec, tmp_path / "v.mp4")
    counts = truth["counts"]
    assert isinstance(counts, dict) and counts["out"] == {}
    crossings = json.loads((tmp_path / "v.truth.json").read_text())["crossings"]
    assert len(crossings) == truth["items"] == sum(counts["in"].values()) > 0
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 100
    for c in crossings:  # the item is seen where the truth says, at the frame it crossed
        mask = green(frames[c["frame"]])
        px, py = round(c["x"] * spec.width), round(c["y"] * spec.height)
        assert mask[max(0, py - 4) : py + 5, max(0, px - 4) : px + 5].any()
    from device.count_config import load_count_settings

    assert load_count_settings(tmp_path / "v.yaml").line_specs()[0].x1 == truth["line"][0]  # type: ignore[index]


def test_camera_belt_settings_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="direction"):
        CameraBeltSpec(direction="sideways")
    with pytest.raises(ValueError, match="tilt"):
        CameraBeltSpec(tilt=1.5)
