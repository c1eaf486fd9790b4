"""``farz train classify-adapt`` on a tiny classifier whose last layer is a Gemm (tests/colour_classifier.py):
it learns a site's items, refuses bad input with one line and writes nothing, and the gated graph computes
what the numpy model of it computes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from blob_model import write_blob_model
from colour_classifier import write_colour_classifier
from hypothesis import given, settings
from hypothesis import strategies as st

from training.classify_adapt import (
    AdaptError,
    FeatureModel,
    Gate,
    SiteCrop,
    build_gated_graph,
    classify_adapt,
    gated,
    head_weights,
    softmax,
    split_by_item,
    unit_rows,
)
from training.metadata import read_metadata

RED, BLUE = (40, 40, 230), (230, 80, 40)


def write_site(root: Path, items: int = 10, crops: int = 3) -> Path:
    """``items`` tracks per class (red cardboard, blue glass), ``crops`` crops each, as pull-reviews names them."""
    rng = np.random.default_rng(0)
    for name, colour in (("cardboard", RED), ("glass", BLUE)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for item in range(items):
            for k in range(crops):
                image = np.full((48, 48, 3), 30, np.uint8)
                cv2.rectangle(image, (8, 8), (40, 40), tuple(int(c + rng.integers(-20, 20)) for c in colour), -1)
                cv2.imwrite(str(root / name / f"cam-1-{name}{item}-c{k}.jpg"), image)
    return root


def test_a_site_whose_items_the_classifier_swaps_is_learnt_and_the_models_say_where_they_come_from(tmp_path: Path) -> None:
    wrong = write_colour_classifier(tmp_path / "wrong.onnx", name="colour-wrong", flip=True, gemm=True)
    data = write_site(tmp_path / "site")
    report = classify_adapt(data, tmp_path / "out", wrong, None, "site-a")
    assert report["held_out_accuracy"] == {"before": 0.0, "after": 1.0}
    assert report["int8_agrees_with_fp32"] == 1.0
    assert report["crops"] == 60 and report["items"] == 20 and report["crops_per_class"] == {"cardboard": 30, "glass": 30}
    assert report["held_out_crops"] == 12  # 2 of each class's 10 items, all 3 crops of each
    meta = read_metadata(tmp_path / "out" / "farz-material.int8.onnx")
    assert meta["farz_name"] == "farz-material-site-a" and meta["site"] == "site-a" and meta["site_crops"] == "60"
    assert meta["base_model"].startswith("colour-wrong@sha256:") and meta["data_hash"] == report["data_hash"]
    assert meta["task"] == "classify" and "INT8" in meta["quantization"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["site"] == "site-a"


@pytest.mark.parametrize(
    "breakage, said",
    [
        (lambda d: (d / "wood").mkdir(), "not classes"),
        (lambda d: (d / "metal").mkdir(), "no images"),
        (lambda d: (d / "glass" / "broken.jpg").write_bytes(b"not a jpeg"), "broken.jpg"),
    ],
)
def test_bad_site_folders_are_refused_and_nothing_is_written(tmp_path: Path, breakage: object, said: str) -> None:
    wrong = write_colour_classifier(tmp_path / "wrong.onnx", flip=True, gemm=True)
    data = write_site(tmp_path / "site")
    breakage(data)  # type: ignore[operator]
    with pytest.raises(AdaptError, match=said):
        classify_adapt(data, tmp_path / "out", wrong, None)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".adapt-*"))


def test_too_few_crops_or_a_detector_are_refused(tmp_path: Path) -> None:
    wrong = write_colour_classifier(tmp_path / "wrong.onnx", flip=True, gemm=True)
    with pytest.raises(AdaptError, match="at least 100"):
        classify_adapt(write_site(tmp_path / "site"), tmp_path / "out", wrong, None, min_crops=100)
    with pytest.raises(AdaptError, match="--from takes a material classifier"):
        classify_adapt(write_site(tmp_path / "site"), tmp_path / "out", write_blob_model(tmp_path / "blob.onnx"), None)
    assert not (tmp_path / "out").exists()


def test_the_command_says_what_is_wrong_in_one_line_with_exit_code_3(tmp_path: Path) -> None:
    wrong = write_colour_classifier(tmp_path / "wrong.onnx", flip=True, gemm=True)
    data = write_site(tmp_path / "site")
    (data / "wood").mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "farz", "train", "classify-adapt", "--data", str(data), "--out", str(tmp_path / "o"), "--from", str(wrong)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 3 and "wood" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30), st.integers(0, 2)), min_size=1, max_size=200))
def test_a_tracks_crops_stay_on_one_side_of_the_split(rows: list[tuple[int, int, int]]) -> None:
    crops = [SiteCrop(Path(f"{c}/t{t}-c{k}.jpg"), c, f"{c}-t{t}") for c, t, k in rows]
    fit, held = split_by_item(crops, 0.2, seed=1)
    assert not {c.item for c in fit} & {c.item for c in held}
    assert sorted(map(str, [c.path for c in fit + held])) == sorted(map(str, [c.path for c in crops]))
    for class_id in {c.class_id for c in crops}:
        items = {c.item for c in crops if c.class_id == class_id}
        if len(items) >= 2:
            assert {c.item for c in fit if c.class_id == class_id}, "every class keeps items to fit"


def test_the_gated_graph_computes_what_its_numpy_model_computes(tmp_path: Path) -> None:
    base = write_colour_classifier(tmp_path / "base.onnx", gemm=True)
    model = onnx.load(str(base))
    w0, b0 = head_weights(model)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (64, 32, 32, 3), np.uint8)
    features = FeatureModel(model)(list(crops)).astype(np.float64)
    w, b = w0[::-1].copy(), b0[::-1].copy()  # another head: the classes in reverse
    gate = Gate(unit_rows(features[:8]).astype(np.float32), unit_rows(features[40:]).astype(np.float32), margin=0.0, sharpness=400.0)
    build_gated_graph(model, w, b, gate)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"crops": crops})[0]
    want = gated(softmax(features @ w0.T + b0), softmax(features @ w.T + b), gate, features)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert (gate.openness(features[:8]) > 0.5).all()  # its own memory passes the gate ...
    assert (gate.openness(features[40:]) < 0.5).all()  # ... and the base crops do not
