"""``farz device check-scene``: false items on an empty belt, and the ignore zones it proposes for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from blob_model import write_blob_model

from device.count_config import load_count_settings
from device.scene_check import FalseItem, fitted_motion, propose_zones, segment_meets_box, zones_on_belt


def item(x1: float, y1: float, x2: float, y2: float, size: float = 0.04) -> FalseItem:
    return FalseItem(1, 10, (x1, y1, x2, y2), size)


def test_each_cluster_of_false_items_gets_one_padded_zone() -> None:
    zones = propose_zones([item(0.10, 0.10, 0.12, 0.12), item(0.13, 0.11, 0.15, 0.13), item(0.8, 0.7, 0.8, 0.7)])
    assert [z.name for z in zones] == ["scene-1", "scene-2"]
    assert zones[0].polygon == [(0.08, 0.08), (0.17, 0.08), (0.17, 0.15), (0.08, 0.15)]  # the two merged, padded by 0.02
    assert zones[1].polygon == [(0.78, 0.68), (0.82, 0.68), (0.82, 0.72), (0.78, 0.72)]


def test_a_false_item_riding_with_the_belt_gets_no_zone_one_staying_put_does() -> None:
    frames = list(range(40))
    rng = np.random.default_rng(0)
    carried = [(0.05 + 0.01 * f + float(rng.normal(0, 0.04)), 0.3 + float(rng.normal(0, 0.08))) for f in frames]  # jumpy, but carried
    wandering = [(0.95 + float(rng.normal(0, 0.02)), 0.5 + float(rng.normal(0, 0.1))) for f in frames]  # a rail's box, to and fro
    assert fitted_motion(frames, carried)[0] > 0.3 and fitted_motion(frames, wandering)[0] < 0.05
    cleat = FalseItem(1, 40, (0.05, 0.2, 0.45, 0.3), 0.6, *fitted_motion(frames, carried))  # a bar across the belt
    rail = FalseItem(2, 40, (0.93, 0.4, 0.97, 0.6), 0.2, *fitted_motion(frames, wandering))
    wobble = FalseItem(3, 300, (0.7, 0.3, 0.8, 0.4), 0.1, travel=0.08, stray=0.1)  # a drift lost in its wandering
    assert cleat.rides_belt and not rail.rides_belt and not wobble.rides_belt
    zones = propose_zones([cleat, rail, wobble])
    assert sorted(z.polygon[0] for z in zones) == [(0.675, 0.275), (0.88, 0.35)]  # the wobble's and the rail's, none for the cleat
    stray = FalseItem(4, 30, (0.2, 0.2, 0.25, 0.3), 0.1)  # stayed put, but where cleats rode: on the belt
    zones = propose_zones([cleat, rail, stray])
    on_belt = zones_on_belt(zones, [cleat, rail, stray])
    assert len(zones) == 2 and len(on_belt) == 1
    assert next(z for z in zones if z.name == on_belt[0]).polygon[0] == (0.175, 0.175)  # the stray's zone, not the rail's


def test_zones_stay_in_the_frame_pad_by_item_size_and_skip_taken_names() -> None:
    (zone,) = propose_zones([item(0.0, 0.95, 0.02, 1.0, size=0.2)], taken=["scene-1"])
    assert zone.name == "scene-2"
    assert zone.polygon == [(0.0, 0.9), (0.07, 0.9), (0.07, 1.0), (0.0, 1.0)]


@pytest.mark.parametrize(
    ("segment", "meets"),
    [
        ((0.0, 0.5, 1.0, 0.5), True),  # straight through
        ((0.0, 0.1, 1.0, 0.1), False),  # passes above
        ((0.45, 0.45, 0.5, 0.5), True),  # starts inside
        ((0.0, 0.0, 0.3, 0.3), False),  # ends before it
        ((0.5, 0.0, 0.5, 1.0), True),  # vertical through
    ],
)
def test_a_zone_across_a_count_line_is_recognised(segment: tuple[float, float, float, float], meets: bool) -> None:
    assert segment_meets_box(segment, (0.4, 0.4, 0.6, 0.6)) is meets


def test_a_false_item_travelling_with_the_belt_across_the_line_gets_no_zone(tmp_path: Path) -> None:
    """A stain on the belt rides through the count line: a zone would hide real items, so it is only reported."""
    from blob_model import write_blob_video

    model = write_blob_model(tmp_path / "blob.onnx")
    video = tmp_path / "stain.avi"
    write_blob_video(video, ["red"] * 3)  # a red mark crossing the middle line, once a lap
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"device_id": "cam-1", "source": str(video), "model": str(model), "classifier": None}))
    done = check("--config", str(config), "--seconds", "30", "--save", "--json")
    assert done.returncode == 4, done.stderr
    report = json.loads(done.stdout)
    assert report["false_items"] >= 1 and report["riding_the_belt"] and report["ignore_zones"] == []
    assert report["saved"] is None and load_count_settings(config).ignore == []
    text = check("--config", str(config), "--seconds", "30")
    assert "rode with the belt" in text.stdout and "proposed ignore zones" not in text.stdout, text.stdout


def empty_belt(path: Path, stain: tuple[int, int] | None, frames: int = 90) -> Path:
    """A dark belt; ``stain``: a bright patch (the blob detector sees it as an item) jittering in place."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15, (128, 96))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        frame = np.full((96, 128, 3), 20, np.uint8)
        if stain is not None:
            x, y = stain[0] + int(rng.integers(-1, 2)), stain[1] + int(rng.integers(-1, 2))
            cv2.rectangle(frame, (x, y), (x + 10, y + 10), (40, 40, 255), -1)
        writer.write(frame)
    writer.release()
    path.with_suffix(".yaml").write_text("line: [0.0, 0.5, 1.0, 0.5]\n")
    return path


def check(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "farz", "device", "check-scene", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_a_stain_on_an_empty_belt_is_found_and_its_zone_saved_silences_it(tmp_path: Path) -> None:
    model = write_blob_model(tmp_path / "blob.onnx")
    video = empty_belt(tmp_path / "empty.avi", stain=(100, 10))
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {"device_id": "cam-1", "source": str(video), "model": str(model), "classifier": None, "count": {"line": [0.0, 0.5, 1.0, 0.5]}}
        )
    )
    first = check("--config", str(config), "--seconds", "5", "--json")
    assert first.returncode == 4, first.stderr
    report = json.loads(first.stdout)
    assert report["false_items"] == 1 and report["frames"] == 75 and report["saved"] is None
    ((x1, y1), _, (x2, y2), _) = report["ignore_zones"][0]["polygon"]
    assert x1 < 105 / 128 < x2 and y1 < 15 / 96 < y2  # around the stain's centre
    assert x2 - x1 < 0.3 and y2 - y1 < 0.3  # and not the whole belt

    saved = check("--config", str(config), "--seconds", "5", "--save")
    assert saved.returncode == 4 and "saved into" in saved.stdout, saved.stdout + saved.stderr
    assert [z.name for z in load_count_settings(config).ignore] == ["scene-1"]
    assert config.with_name("agent.yaml.bak").is_file()

    again = check("--config", str(config), "--seconds", "5", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["false_items"] == 0


def test_a_clean_empty_belt_passes(tmp_path: Path) -> None:
    model = write_blob_model(tmp_path / "blob.onnx")
    video = empty_belt(tmp_path / "clean.avi", stain=None)
    done = check(str(video), "--model", str(model), "--classifier", "none", "--seconds", "3")
    assert done.returncode == 0, done.stderr
    assert "0 false items" in done.stdout and "0 counted" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seconds", "0"], "--seconds must be above 0"),
        (["--save"], "--save writes the zones into an agent config"),
        ([], "no source"),
    ],
)
def test_bad_requests_are_refused_in_one_line(args: list[str], message: str) -> None:
    done = check(*args)
    assert done.returncode == 3 and message in done.stderr and "Traceback" not in done.stderr
