"""``farz count`` from the command line: JSON shape, settings beside the video, clear errors and exit codes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from farz.cli import build_parser, main


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (160, 120)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, size)
    for f in range(frames):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.rectangle(frame, (10 + f * 10, 40), (40 + f * 10, 70), (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def assert_one_clear_line(argv: list[str], message: str) -> None:
    """``farz ARGV`` exits 3 with one line on stderr that holds ``message``, and no traceback."""
    proc = subprocess.run([sys.executable, "-m", "farz", *argv], capture_output=True, text=True, check=False)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


@pytest.fixture
def model(constant_model: Callable[..., Path]) -> Path:
    out = np.zeros((1, 10, 20), np.float32)
    out[0, :4, 0] = [32, 32, 10, 10]
    out[0, 4, 0] = 0.9
    return constant_model(out)


def test_count_json_prints_exactly_one_object_with_the_contract_shape(tmp_path: Path, model: Path) -> None:
    video = write_video(tmp_path / "v.mp4")
    proc = subprocess.run(
        [sys.executable, "-m", "farz", "count", str(video), "--model", str(model), "--json"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"counts", "frames", "seconds", "fps"}
    assert set(result["counts"]) == {"in", "out"} and result["frames"] == 12


def test_count_writes_events_and_an_annotated_video(tmp_path: Path, model: Path) -> None:
    video = write_video(tmp_path / "v.mp4")
    events, saved = tmp_path / "e.jsonl", tmp_path / "out.mp4"
    assert main(["count", str(video), "--model", str(model), "--events", str(events), "--save", str(saved), "--json"]) == 0
    assert events.exists() and cv2.VideoCapture(str(saved)).get(cv2.CAP_PROP_FRAME_COUNT) == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["count", "{tmp}/missing.mp4"], "video file not found"),
        (["count", "{tmp}/not-a-video.mp4"], "not a readable video"),
        (["count", "{video}", "--line", "0,0.5,2,0.5"], "coordinates must be in 0-1"),
        (["count", "{video}", "--line", "0,0.5"], "four numbers"),
        (["count", "{video}", "--model", "{tmp}/nope.onnx"], "file not found"),
        (["count", "{video}", "--model", "{tmp}/not-a-video.mp4"], "not a loadable ONNX model"),
        (["count", "{video}", "--config", "{tmp}/bad.yaml"], "bad.yaml: confidence"),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_code_3(tmp_path: Path, model: Path, args: list[str], message: str) -> None:
    video = write_video(tmp_path / "v.mp4")
    (tmp_path / "not-a-video.mp4").write_text("hello")
    (tmp_path / "bad.yaml").write_text("confidence: 7\n")
    argv = [a.format(tmp=tmp_path, video=video) for a in args]
    if "--model" not in argv:
        argv += ["--model", str(model)]
    assert_one_clear_line(argv, message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synth", "--out", "{tmp}/s", "--camera", "1.5"], "need fractions in 0-1"),
        (["synth", "--out", "{tmp}/s", "--min-visible", "0"], "need fractions in 0-1"),
        (["synth", "--out", "{tmp}/s", "--two-tone", "-0.1"], "need fractions in 0-1"),
        (["synth", "--video", "--out", "{tmp}/v.mp4", "--size", "3x"], "expected WxH"),
        (["camera-belt", "--out", "{tmp}/v.mp4", "--tilt", "2"], "need 0 <= tilt < 1"),
        (["camera-belt", "--out", "{tmp}/v.mp4", "--scale", "0.3,0.1"], "min_scale <= max_scale"),
        (["camera-belt", "--out", "{tmp}/v.mp4", "--fps", "0"], "--fps > 0"),
        (["camera-belt", "--out", "{tmp}/v.mp4", "--cutouts", "{tmp}/none"], "no cut-outs"),
    ],
)
def test_bad_scene_and_video_settings_give_one_clear_line_and_exit_code_3(tmp_path: Path, args: list[str], message: str) -> None:
    argv = ["datasets", *(a.format(tmp=tmp_path) for a in args)]
    assert_one_clear_line(argv, message)
    assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "s").exists()  # refused before anything is written


def test_settings_beside_the_video_are_used_when_no_line_is_given(tmp_path: Path, model: Path) -> None:
    from device.count_config import settings_for_video
    from vision import LineSpec

    video = write_video(tmp_path / "v.mp4")
    video.with_suffix(".yaml").write_text("line: [0, 0.3, 1, 0.3]\nanchor: bottom_center\n")
    assert settings_for_video(video, None, None).line_specs()[0] == LineSpec(0, 0.3, 1, 0.3, anchor="bottom_center")
    assert settings_for_video(video, None, LineSpec(0.5, 0, 0.5, 1)).line_specs()[0].x1 == 0.5


def test_help_explains_every_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "farz", "count", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "--line" in proc.stdout and "in 0-1" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "{tmp}/best.pt", "--out", "{tmp}/m.onnx"], "best.pt: no such weights file"),
        (["quantize", "{tmp}/m.onnx", "--out", "{tmp}/q.onnx"], "m.onnx: no such model file"),
        (["fit", "--config", "{tmp}/none.yaml"], "none.yaml: cannot read the config"),
    ],
)
def test_missing_training_inputs_give_one_clear_line_and_exit_code_3(tmp_path: Path, args: list[str], message: str) -> None:
    argv = ["train", *(a.format(tmp=tmp_path) for a in args)]
    assert_one_clear_line(argv, message)


def _commands(parser: argparse.ArgumentParser, path: str = "farz") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, f"{path} {name}")


def test_every_command_and_option_says_what_it_is() -> None:
    undescribed, unexplained = [], []
    for path, parser in _commands(build_parser()):
        if not parser.description:
            undescribed.append(path)
        for action in parser._actions:
            if not action.help and not isinstance(action, argparse._SubParsersAction):
                unexplained.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not undescribed and not unexplained, (undescribed, unexplained)


def test_bench_edge_json_has_every_method_side_by_side() -> None:
    repo = Path(__file__).resolve().parent.parent
    video = repo / "datasets" / "samples" / "belt-a.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "farz", "bench", "edge", "--video", str(video), "--frames", "40", "--rounds", "1", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["frames"] == 40 and result["rounds"] == 1
    for method in ("bare", "pipeline", "detector_only", "supervision"):
        assert result[f"{method}_fps"] > 0
    assert 0 < result["pipeline_over_bare"] < 2 and 0 < result["two_stage_over_detector_only"] < 2
    by_block = result["two_stage_over_detector_only_by_block"]  # 40 frames: two blocks of 30 and 10
    assert by_block["blocks"] == 2 and 0 < by_block["q1"] <= by_block["median"] <= by_block["q3"]
    assert "ultralytics_fps" in result and "pipeline_counts" in result and result["classifier"].endswith("farz-material.int8.onnx")
    assert result["sure_enough"] == 0.8 and result["turns"] == [0]  # vision.MaterialSettings' default crop rule
    stages = result["pipeline_stage_us"]
    assert list(stages) == ["preprocess", "inference", "postprocess", "track", "count", "classify"] and all(
        us > 0 for us in stages.values()
    )
    assert stages["inference"] > stages["track"]


def farz_json(*args: str) -> dict[str, object]:
    """Run ``farz ARGS`` from the repository root; its stdout as JSON (it must exit 0)."""
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "farz", *args], capture_output=True, text=True, check=False, cwd=repo, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_count_eval_and_bench_edge_take_the_crop_rule_to_compare_with() -> None:
    """``--sure-enough 1.0`` (every track takes all its crops) and ``--turns 0`` (crops never turned) reach
    the pipeline both commands run; a turn that is not 0-3 is refused with what to write."""
    video = "datasets/belts/closeup-down.mp4"
    counted = farz_json("train", "count-eval", "--videos", video, "--sure-enough", "1.0", "--turns", "0", "--json")
    assert counted["videos"] == 1 and counted["material"]["sure_enough"] == 1.0  # type: ignore[index]
    assert counted["material"]["turns"] == [0]  # type: ignore[index]
    video = "datasets/samples/belt-a.mp4"
    args = ("--video", video, "--frames", "10", "--rounds", "1", "--json")
    benched = farz_json("bench", "edge", *args, "--sure-enough", "1.0", "--turns", "0,2")
    assert benched["sure_enough"] == 1.0 and benched["turns"] == [0, 2]
    repo = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "farz", "bench", "edge", *args, "--turns", "0,4"]
    bad = subprocess.run(command, check=False, capture_output=True, text=True, cwd=repo)
    assert bad.returncode == 2 and "'0,4' is not a comma-separated list of quarter turns 0-3, e.g. 0,1,2" in bad.stderr


def test_bench_agent_runs_with_masks_and_a_watched_token_protected_live_view() -> None:
    repo = Path(__file__).resolve().parent.parent
    video = repo / "datasets" / "samples" / "belt-a.mp4"
    result = farz_json("bench", "agent", "--video", str(video), "--rounds", "1", "--json")
    assert result["same_counts"] is True and result["privacy_masks"] == 2
    assert result["live_view_requests_served"] >= 1 and result["live_view_requests_refused"] == 1
    assert result["agent_fps"] > 0 and result["count_fps"] > 0


def test_bench_server_measures_ingest_with_and_without_targets_side_by_side() -> None:
    result = farz_json("bench", "server", "--events", "2000", "--queries", "20", "--target-events", "2000", "--json")
    assert result["lost"] == 0 and result["errors"] == 0 and result["targets_events"] == 2000
    assert result["targets_ingest_events_per_s"] > 0 and 0 < result["targets_over_no_targets"] < 3
    assert result["in_process_ms_per_batch_targets"] > 0 and 0 < result["in_process_targets_over_no_targets"] < 3


def test_count_eval_says_where_each_wrong_count_and_missed_item_is() -> None:
    """Every count that was not one item counted once the right way, and every item missed, with its frame."""
    result = farz_json("train", "count-eval", "--videos", "datasets/belts/up-dense.mp4", "datasets/belts/left-medium.mp4", "--json")
    for row in result["per_video"]:  # type: ignore[attr-defined]
        items, wrong, missed = row["items"], row["wrong_counts"], row["missed_items"]
        assert len(wrong) == items["twice"] + items["no_item"] + items["wrong_direction"]
        assert len(missed) == items["missed"]
        assert all(w["verdict"] in ("twice", "no_item", "wrong_direction") and w["frame"] >= 0 for w in wrong)
        assert all(m["class"] and m["frame"] >= 0 for m in missed)
    repo = Path(__file__).resolve().parent.parent
    command = [
        sys.executable,
        "-m",
        "farz",
        "train",
        "count-eval",
        "--videos",
        "datasets/belts/up-dense.mp4",
        "datasets/belts/left-medium.mp4",
    ]
    text = subprocess.run(command, capture_output=True, text=True, check=True, cwd=repo, timeout=300).stdout
    listed = sum(len(row["wrong_counts"]) + len(row["missed_items"]) for row in result["per_video"])  # type: ignore[attr-defined]
    assert text.count("    frame ") == listed


def test_block_ratios_are_the_slower_methods_seconds_over_the_faster_ones_block_by_block() -> None:
    from bench.edge import block_ratios

    ratios = block_ratios([1.0, 1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0, 9.0])  # one block slowed from elsewhere
    assert ratios == {"median": 2.0, "q1": 2.0, "q3": 2.0, "blocks": 5}
