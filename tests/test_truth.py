"""``device.truth``: a video's true counts read from the shapes people write, and one clear line for the rest."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from device.count_config import ConfigError
from device.truth import read_truth
from farz.cli import main

NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")
REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "v.truth.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    "content",
    [
        {"counts": {"in": {"glass": 2, "paper": 1}, "out": {}}, "frames": 210},  # as farz datasets synth --video writes it
        {"counts": {"in": {"glass": 2, "paper": 1}}},  # no "out"
        {"counts": {"glass": 2, "paper": 1}},  # per class, no directions: totals, read as "in"
        {"in": {"Glass": 1, "glass": 1, "PAPER": 1}},  # the counts object itself; names in any case
    ],
)
def test_truth_is_read_from_the_shapes_people_write(content: object, tmp_path: Path) -> None:
    assert read_truth(write(tmp_path, content), NAMES) == {"in": {"glass": 2, "paper": 1}, "out": {}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"counts": {"in": {', "not a JSON truth file"),
        ({"counts": [1, 2]}, '"counts" must be an object'),
        ({"counts": {"in": {"glass": 1}, "glass": 2}}, "mixes directions and classes"),
        ({"counts": {"in": [1]}}, 'counts "in" must be an object'),
        ({"counts": {"in": {"glass": -1}}}, 'count of "glass" (in) must be a whole number >= 0, got -1'),
        ({"counts": {"in": {"glass": 1.5}}}, "must be a whole number"),
        ({"counts": {"in": {"glass": True}}}, "must be a whole number"),
        ({"counts": {"in": {"plastics": 2}}}, 'class "plastics" is not one the models count (cardboard, glass'),
    ],
)
def test_bad_truth_is_refused_in_one_line_naming_the_file(content: object, message: str, tmp_path: Path) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as error:
        read_truth(path, NAMES)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_truth_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such truth file"):
        read_truth(tmp_path / "none.truth.json")


def test_without_names_any_class_is_read(tmp_path: Path) -> None:
    assert read_truth(write(tmp_path, {"counts": {"out": {"Organic": 3}}})) == {"in": {}, "out": {"organic": 3}}


def test_count_eval_reads_any_video_format_and_refuses_bad_truth_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An .avi beside its truth is found; a truth file with a class the models do not know stops the run with
    exit code 3 and one line, before a frame is counted."""
    belt = REPO / "datasets" / "belts" / "closeup-down"
    shutil.copy(belt.with_suffix(".mp4"), tmp_path / "belt.avi")
    shutil.copy(belt.with_suffix(".yaml"), tmp_path / "belt.yaml")
    shutil.copy(belt.with_suffix(".truth.json"), tmp_path / "belt.truth.json")
    (tmp_path / "bad.mp4").write_bytes(belt.with_suffix(".mp4").read_bytes())
    (tmp_path / "bad.truth.json").write_text(json.dumps({"counts": {"in": {"bottles": 1}}}))
    assert main(["train", "count-eval", "--videos", str(tmp_path), "--json"]) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert 'bad.truth.json: class "bottles" is not one the models count' in captured.err
    (tmp_path / "bad.truth.json").unlink()
    assert main(["train", "count-eval", "--videos", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [row["video"] for row in result["per_video"]] == ["belt.avi"]
    assert result["true"] == 5
    items = result["per_video"][0]["items"]  # the rendered truth lists each item's crossing: matched one by one
    assert items["paired"] + items["missed"] == 5 and items == result["items"]


def test_crossings_are_read_when_given_and_refused_in_one_line_when_malformed(tmp_path: Path) -> None:
    from device.truth import TrueCrossing, read_crossings

    assert read_crossings(write(tmp_path, {"counts": {"in": {"glass": 1}}})) is None  # counts only: no per-item truth
    row = {"frame": 12, "class": "glass", "direction": "in", "x": 0.5, "y": 0.4, "w": 0.2, "h": 0.3, "vx": 0.02, "vy": 0.0}
    path = write(tmp_path, {"counts": {"in": {"glass": 1}}, "crossings": [row]})
    assert read_crossings(path) == [TrueCrossing(12, "glass", "in", 0.5, 0.4, 0.2, 0.3, 0.02, 0.0)]
    for bad, message in (
        ({**row, "x": "left"}, "crossings[0] needs frame, class, direction, x, y, w, h, vx, vy"),
        ({k: v for k, v in row.items() if k != "vy"}, "crossings[0] needs"),
        ({**row, "direction": "up"}, 'crossings[0] direction must be "in" or "out"'),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            read_crossings(write(tmp_path, {"counts": {}, "crossings": [bad]}))
    with pytest.raises(ConfigError, match='"crossings" must be a list'):
        read_crossings(write(tmp_path, {"counts": {}, "crossings": {"0": row}}))


def test_compare_and_synth_refuse_bad_input_in_one_line_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(REPO / "models" / "farz-waste.int8.onnx")
    missing = tmp_path / "no-such-belt.mp4"
    assert main(["train", "compare", model, model, "--data", str(tmp_path), "--empty", str(missing)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{missing}: no such video" in err and "Traceback" not in err
    out = tmp_path / "v.mp4"
    assert main(["datasets", "synth", "--video", "--rate", "-1", "--cutouts", str(tmp_path / "none"), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "need a rate >= 0 (0: an empty belt)" in err and not out.exists()
