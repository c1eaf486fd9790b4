"""The training path end to end on a few images: render → prepare → fit 1 epoch → export → quantize → eval.

Slow (about a minute on two cores) and needs the training extra; it proves the commands fit together
and that the exported and quantized files load in the deployed detector.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from training.synth import Cutout, render_training_image
from vision import OnnxDetector

pytest.importorskip("ultralytics")


def attention_in_int8(model: Path) -> list[str]:
    """Attention convs with INT8 weights and matmuls of INT8 tensors (``…/attn/…``)."""
    graph = onnx.load(str(model)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    operands = {"Conv": slice(1, 2), "MatMul": slice(0, 2)}  # a conv's weights; both sides of a matmul
    return [n.name for n in graph.node if "/attn/" in n.name and n.op_type in operands and dequantized & set(n.input[operands[n.op_type]])]


pytestmark = [pytest.mark.slow, pytest.mark.training]
NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")


def tiny_dataset(root: Path, n_train: int = 24, n_val: int = 8) -> Path:
    rng = np.random.default_rng(0)
    cutouts = []
    for class_id in range(len(NAMES)):
        rgba = np.zeros((60, 40, 4), np.uint8)
        rgba[..., :3] = (class_id * 40, 220 - class_id * 30, 60 + class_id * 30)
        rgba[4:56, 4:36, 3] = 255
        cutouts.append(Cutout(rgba, class_id, str(class_id)))
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            image, labels = render_training_image(cutouts, rng, size=(160, 120))
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), image)
            (root / "labels" / split / f"{i}.txt").write_text(labels.to_text())
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return root


def farz(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "farz", *args], capture_output=True, text=True, cwd=cwd, env=env, check=False, timeout=900)


def test_prepare_fit_export_quantize_eval(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    data = tmp_path / "data"  # the rendered scenes as a site's YOLO export, through `farz train prepare` like any new data
    prep = farz("train", "prepare", str(tiny_dataset(tmp_path / "raw", n_train=40, n_val=8)), "--out", str(data), "--json", cwd=repo)
    assert prep.returncode == 0, prep.stderr[-2000:]
    assert json.loads(prep.stdout)["images"] == {"train": 36, "val": 8, "test": 4}  # deterministic split by file name
    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\nmodel: yolo26n.yaml\nimgsz: 64\nepochs: 1\nbatch: 8\nworkers: 0\ndevice: cpu\n")
    fit = farz("train", "fit", "--config", str(config), "--run", str(tmp_path / "run"), "--data", str(data), cwd=repo)
    assert fit.returncode == 0, fit.stderr[-2000:]
    best = Path(fit.stdout.strip().splitlines()[-1])
    assert best.is_file() and (tmp_path / "run" / "config.yaml").is_file() and (tmp_path / "run" / "data_hash.txt").is_file()
    assert "epoch 1/1  val precision" in fit.stderr and "best.pt  val precision" in fit.stderr  # one line per epoch, then best
    fp32 = tmp_path / "run" / "model.onnx"
    exp = farz("train", "export", str(best), "--out", str(fp32), "--imgsz", "64", cwd=repo)
    assert exp.returncode == 0, exp.stderr[-2000:]
    int8 = tmp_path / "run" / "model.int8.onnx"
    qua = farz("train", "quantize", str(fp32), "--out", str(int8), "--calib", str(data / "images" / "train"), "--images", "8", cwd=repo)
    assert qua.returncode == 0, qua.stderr[-2000:]
    assert "FP32" in qua.stdout
    qua_default_kept = qua.stdout
    lean = tmp_path / "run" / "model.lean.int8.onnx"
    flags = ("--attention", "fp32", "--weights", "per-tensor", "--input", "float", "--first-conv", "int8")
    calib = ("--calib", str(data / "images" / "train"), "--images", "8")
    qua = farz("train", "quantize", str(fp32), "--out", str(lean), *calib, *flags, cwd=repo)
    assert qua.returncode == 0, qua.stderr[-2000:]
    assert "per-tensor weights" in OnnxDetector(lean).info.metadata["quantization"]
    assert attention_in_int8(int8) and not attention_in_int8(lean)  # yolo26n has attention blocks: kept FP32 when asked
    assert OnnxDetector(int8).info.uint8_input and not OnnxDetector(lean).info.uint8_input  # uint8 BGR pixels by default
    assert "/model.0/conv/Conv" in qua_default_kept and "/model.0/conv/Conv" not in qua.stdout  # the first conv: FP32 unless asked
    for model in (fp32, int8):
        detector = OnnxDetector(model)
        assert detector.names == NAMES and detector.info.imgsz == (64, 64) and detector.info.dynamic  # rect by default
        assert detector.info.metadata["taxonomy_version"] == "1"
        ev = farz("train", "eval", "--model", str(model), "--data", str(data), "--json", "--record", cwd=repo)
        assert ev.returncode == 0, ev.stderr[-2000:]
        result = json.loads(ev.stdout)
        assert json.loads(OnnxDetector(model).info.metadata["metrics"])["map50"] == result["map50"]
        assert {"map50", "map50_95", "per_class", "images", "ms_per_frame"} <= set(result)
        assert result["images"] == 8 and set(result["per_class"]) == set(NAMES)
    cmp = farz("train", "compare", str(fp32), str(int8), "--data", str(data), "--json", cwd=repo)
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    verdict = json.loads(cmp.stdout)
    assert {"map50_delta", "speedup_b_over_a", "better"} <= set(verdict) and verdict["b"]["count_error"] is not None


def fit_tiny(tmp_path: Path, data: Path, repo: Path, extra: str = "") -> Path:
    """One epoch of a tiny model on ``data`` at 64 px (``extra``: more recipe lines); returns its best.pt."""
    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\nmodel: yolo26n.yaml\nimgsz: 64\nepochs: 1\nbatch: 8\nworkers: 0\ndevice: cpu\n" + extra)
    fit = farz("train", "fit", "--config", str(config), "--run", str(tmp_path / "run"), "--data", str(data), cwd=repo)
    assert fit.returncode == 0, fit.stderr[-2000:]
    return Path(fit.stdout.strip().splitlines()[-1])


def test_an_item_detector_trains_exports_and_counts_only_with_a_classifier(tmp_path: Path) -> None:
    """`single_class: true`: every class trained as one `item`; the file says so, and the pipeline needs the
    material classifier to name what it finds (a count of `item` would be refused by the server)."""
    from blob_model import write_blob_video
    from colour_classifier import write_colour_classifier

    repo = Path(__file__).resolve().parent.parent
    best = fit_tiny(tmp_path, tiny_dataset(tmp_path / "raw", n_train=24, n_val=8), repo, "single_class: true\n")
    model = tmp_path / "item.onnx"
    exp = farz("train", "export", str(best), "--out", str(model), "--imgsz", "64", cwd=repo)
    assert exp.returncode == 0, exp.stderr[-2000:]
    assert OnnxDetector(model).names == ("item",)
    video = tmp_path / "belt.avi"
    write_blob_video(video, ["red", "blue"])
    alone = farz("count", str(video), "--model", str(model), "--classifier", "none", cwd=repo)
    assert alone.returncode == 3 and "an item detector" in alone.stderr and "Traceback" not in alone.stderr
    classifier = write_colour_classifier(tmp_path / "colour.onnx")
    paired = farz("count", str(video), "--model", str(model), "--classifier", str(classifier), "--json", cwd=repo)
    assert paired.returncode == 0, paired.stderr[-2000:]
    assert set(json.loads(paired.stdout)["counts"]) == {"in", "out"}
    bench = farz(
        "bench",
        "edge",
        "--video",
        str(video),
        "--model",
        str(model),
        "--classifier",
        str(classifier),
        "--frames",
        "8",
        "--rounds",
        "1",
        "--json",
        cwd=repo,
    )
    assert bench.returncode == 0, bench.stderr[-2000:]  # its detector-only baseline counts `item`, for timing
    assert json.loads(bench.stdout.strip().splitlines()[-1])["two_stage_over_detector_only"] > 0


def test_recover_rebuilds_trainable_weights_from_the_fp32_file(tmp_path: Path) -> None:
    """ONNX → .pt → fit → export: the rebuilt model outputs what the file does, and Ultralytics trains from it."""
    import onnxruntime as ort

    repo = Path(__file__).resolve().parent.parent
    data = tiny_dataset(tmp_path / "data", n_train=16, n_val=4)
    fp32 = tmp_path / "model.onnx"
    assert farz("train", "export", str(fit_tiny(tmp_path, data, repo)), "--out", str(fp32), "--imgsz", "64", cwd=repo).returncode == 0
    calib = ("--calib", str(data / "images" / "train"), "--images", "8", "--architecture", "yolo26n.yaml")
    rec = farz("train", "recover", str(fp32), "--out", str(tmp_path / "recovered.pt"), *calib, cwd=repo)
    assert rec.returncode == 0, rec.stderr[-2000:]
    diff, scale = map(float, re.findall(r"file ([\d.e+-]+) \(outputs up to ([\d.e+-]+)\)", rec.stdout)[0])
    assert diff < 1e-3 * scale, rec.stdout  # float rounding, not a wrong tensor (which moves outputs by whole pixels)
    again = tmp_path / "again.onnx"
    assert farz("train", "export", str(tmp_path / "recovered.pt"), "--out", str(again), "--imgsz", "64", cwd=repo).returncode == 0
    blob = np.random.default_rng(1).random((1, 3, 64, 96), dtype=np.float32)
    expected, got = (ort.InferenceSession(str(m)).run(None, {"images": blob})[0] for m in (fp32, again))
    assert np.abs(expected - got).max() < 1e-3 * scale
    config = tmp_path / "tiny.yaml"  # fit_tiny's recipe
    config.write_text(config.read_text() + f"init: {fp32}\n")  # fit rebuilds the .pt itself, as `recover` does, then trains it
    refit = farz("train", "fit", "--config", str(config), "--run", str(tmp_path / "refit"), "--data", str(data), cwd=repo)
    assert refit.returncode == 0, refit.stderr[-2000:]
    assert (tmp_path / "refit" / "init.pt").is_file() and "epoch 1/1" in refit.stderr
    int8 = tmp_path / "model.int8.onnx"
    assert farz("train", "quantize", str(fp32), "--out", str(int8), *calib[:4], cwd=repo).returncode == 0
    refused = farz("train", "recover", str(int8), "--out", str(tmp_path / "no.pt"), *calib, cwd=repo)
    assert refused.returncode != 0 and "FP32" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr[-2000:]
