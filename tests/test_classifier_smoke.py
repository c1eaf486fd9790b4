"""The classifier's training path on a few real photos: classify-fit 1 epoch at 64 px → classify-export →
quantize → classify-eval (class folders and a YOLO set), and the files load in ``vision.Classifier``.
Also: the ImageNet weights really load (their own head names two shipped photos sensibly), and bad input
gets one clear line and exit code 3. Needs the training extra and ``../shared/datasets/trashnet``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.cutouts import item_split
from training.synth import Cutout, render_training_image
from vision import Classifier

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
REPO = Path(__file__).resolve().parent.parent
TRASHNET = REPO.parent / "shared" / "datasets" / "trashnet"
NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")
pytestmark = [pytest.mark.slow, pytest.mark.training]


def farz(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "farz", *args], capture_output=True, text=True, cwd=REPO, env=env, check=False, timeout=900
    )


def few_photos(out: Path, split: str, per_class: int) -> Path:
    """The first ``per_class`` photos of one split by item, per class, as class folders."""
    if not TRASHNET.is_dir():
        pytest.skip("../shared/datasets/trashnet is not beside the project")
    for name in NAMES:
        (out / name).mkdir(parents=True)
        photos = [p for p in sorted((TRASHNET / name).glob("*.jpg")) if item_split(p.name) == split][:per_class]
        for p in photos:
            shutil.copy(p, out / name / p.name)
    return out


def tiny_yolo_set(root: Path) -> Path:
    rng = np.random.default_rng(0)
    cutouts = [Cutout(np.full((40, 30, 4), (40 * k, 200 - 30 * k, 90, 255), np.uint8), k, str(k)) for k in range(len(NAMES))]
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    for i in range(3):
        image, labels = render_training_image(cutouts, rng, size=(160, 120))
        cv2.imwrite(str(root / "images" / "val" / f"{i}.jpg"), image)
        (root / "labels" / "val" / f"{i}.txt").write_text(labels.to_text())
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    (root / "data.yaml").write_text(f"path: {root}\nval: images/val\nnames:\n{names}")
    return root


def test_the_imagenet_weights_load_and_name_shipped_photos() -> None:
    from torchvision.models import ResNet18_Weights

    from training.classify_model import build_network, to_network_input

    categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]  # ImageNet's class names, shipped with torchvision
    net = build_network("efficientnet-lite0", 1000).eval()
    for photo, expected in (("trashnet-plastic5.jpg", "water bottle"), ("trashnet-cardboard25.jpg", "carton")):
        crop = cv2.imread(str(REPO / "tests" / "data" / photo))
        with torch.no_grad():
            p = net(to_network_input(torch.from_numpy(crop[None]))).softmax(1)[0]
        assert categories[int(p.argmax())] == expected and float(p.max()) > 0.5


def test_classify_fit_export_quantize_eval(tmp_path: Path) -> None:
    source = few_photos(tmp_path / "photos", "train", 3)
    for p in few_photos(tmp_path / "val-photos", "val", 2).rglob("*.jpg"):
        shutil.copy(p, source / p.parent.name / p.name)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"imgsz: 64\nepochs: 1\nbatch: 6\nfreeze_blocks: 10\nsource: {source}\ncutouts: {tmp_path / 'none'}\n")
    fit = farz("train", "classify-fit", "--config", str(config), "--run", str(tmp_path / "run"))
    assert fit.returncode == 0, fit.stderr[-2000:]
    assert "epoch 1/1: loss" in fit.stdout and "best.pt: validation accuracy" in fit.stdout
    best = Path(fit.stdout.strip().splitlines()[-1])
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    exp = farz("train", "classify-export", str(best), "--out", str(fp32), "--source", str(source))
    assert exp.returncode == 0, exp.stderr[-2000:]
    qua = farz(
        "train", "quantize", str(fp32), "--out", str(int8), "--source", str(source), "--cutouts", str(tmp_path / "none"), "--images", "8"
    )
    assert qua.returncode == 0, qua.stderr[-2000:]
    for model in (fp32, int8):
        classifier = Classifier(model)
        assert classifier.names == NAMES and classifier.imgsz == 64
        assert classifier.info.metadata["task"] == "classify" and classifier.info.metadata["taxonomy_version"]
        assert {"normalisation", "input", "data_hash", "metrics", "arch"} <= set(classifier.info.metadata)
    test = few_photos(tmp_path / "test", "test", 1)
    ev = farz("train", "classify-eval", "--model", str(int8), "--data", str(test), "--json", "--plot", str(tmp_path / "c.png"))
    assert ev.returncode == 0, ev.stderr[-2000:]
    result = json.loads(ev.stdout)
    assert {"accuracy", "macro_f1", "per_class", "confusion", "images", "ms_per_crop"} <= set(result)
    assert set(result["per_class"]["glass"]) >= {"precision", "recall", "support"} and len(result["confusion"]) == len(NAMES)
    assert result["images"] == sum(row for r in result["confusion"] for row in r) and cv2.imread(str(tmp_path / "c.png")) is not None
    yolo = farz("train", "classify-eval", "--model", str(int8), "--data", str(tiny_yolo_set(tmp_path / "yolo")), "--json")
    assert yolo.returncode == 0, yolo.stderr[-2000:]
    assert json.loads(yolo.stdout)["images"] > 3  # one crop per labelled box
    again = tmp_path / "again.yaml"  # a later sitting from the exported file itself, no run folder
    again.write_text(config.read_text().replace("freeze_blocks: 10", f"freeze_blocks: 10\ninit: {fp32}"))
    refit = farz("train", "classify-fit", "--config", str(again), "--run", str(tmp_path / "again"))
    assert refit.returncode == 0, refit.stderr[-2000:]
    assert f"init: {fp32} rebuilt for training" in refit.stdout and "epoch 1/1: loss" in refit.stdout
    start, soup = tmp_path / "again" / "init.pt", tmp_path / "soup.pt"  # the run keeps where it started, to average with
    avg = farz("train", "average", str(start), str(tmp_path / "again" / "best.pt"), "--out", str(soup))
    assert avg.returncode == 0 and "0.5" in avg.stdout, avg.stderr[-2000:]
    assert farz("train", "classify-export", str(soup), "--out", str(tmp_path / "soup.onnx"), "--source", str(source)).returncode == 0
    assert Classifier(tmp_path / "soup.onnx").names == NAMES
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x01garbage")
    wrong_inits = ((int8, "an INT8 file"), (REPO / "models" / "farz-waste.onnx", "not a classifier"), (corrupt, "not a readable ONNX"))
    for wrong, says in wrong_inits:
        again.write_text(config.read_text().replace("freeze_blocks: 10", f"freeze_blocks: 10\ninit: {wrong}"))
        bad = farz("train", "classify-fit", "--config", str(again), "--run", str(tmp_path / "bad"))
        assert bad.returncode == 3 and says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]


def test_the_shipped_classifier_is_rebuilt_for_training_exactly() -> None:
    """The recovered network (BatchNorm given back as measured statistics) gives the file's probabilities,
    also on crops its statistics were not measured on."""
    from training.classify_data import load_photos, photo_crop
    from training.classify_model import to_network_input
    from training.classify_recover import recover_classifier

    if not TRASHNET.is_dir():
        pytest.skip("../shared/datasets/trashnet is not beside the project")
    photos = load_photos(TRASHNET, NAMES, "val", limit_per_class=6)
    crops = np.stack([photo_crop(p.image, 224, None) for p in photos])
    net, difference = recover_classifier(
        REPO / "models" / "farz-material.onnx", NAMES, "efficientnet-lite0", [p.image for p in photos[::2]]
    )
    assert difference < 1e-4
    with torch.no_grad():
        ours = torch.softmax(net.eval()(to_network_input(torch.from_numpy(crops[1::2]))), 1).numpy()
    theirs = Classifier(REPO / "models" / "farz-material.onnx").predict(crops[1::2])
    assert np.abs(ours - theirs).max() < 1e-4 and (ours.argmax(1) == theirs.argmax(1)).all()


def test_bad_classifier_input_gets_one_clear_line(tmp_path: Path) -> None:
    detector = REPO / "models" / "farz-waste.int8.onnx"
    video = REPO / "datasets" / "samples" / "belt-a.mp4"
    run = farz("count", str(video), "--classifier", str(detector), "--json")
    assert run.returncode == 3 and "this is a detector: pass it as --model" in run.stderr and "Traceback" not in run.stderr
    empty = tmp_path / "empty"
    for name in NAMES:
        (empty / name).mkdir(parents=True)
    run = farz("train", "classify-eval", "--data", str(empty), "--json")
    assert run.returncode == 3 and "no images" in run.stderr and "Traceback" not in run.stderr
    unknown = tmp_path / "unknown"
    (unknown / "wood").mkdir(parents=True)
    run = farz("train", "classify-eval", "--data", str(unknown))
    assert run.returncode == 3 and "not classes of the taxonomy" in run.stderr
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x01garbage")
    run = farz("train", "classify-eval", "--model", str(corrupt), "--data", str(unknown))
    assert run.returncode == 3 and "not a loadable ONNX model" in run.stderr
    run = farz("train", "classify-export", str(tmp_path / "absent.pt"), "--out", str(tmp_path / "x.onnx"))
    assert run.returncode == 3 and "not a readable checkpoint" in run.stderr


def test_a_run_cut_short_resumes_where_it_stopped(tmp_path: Path) -> None:
    """Two epochs straight and one epoch, then --resume for the second, end at the same weights; resuming
    with another recipe, or where there is no last.pt, is refused with one clear line."""
    from training.classify_fit import fit_classifier, load_classifier_config
    from training.taxonomy import load_taxonomy

    source = few_photos(tmp_path / "photos", "train", 3)
    for p in few_photos(tmp_path / "val-photos", "val", 2).rglob("*.jpg"):
        shutil.copy(p, source / p.parent.name / p.name)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        f"imgsz: 48\nepochs: 2\nbatch: 6\nfreeze_blocks: 12\nthreads: 1\nworkers: 2\nsource: {source}\ncutouts: {tmp_path / 'none'}\n"
    )
    config = load_classifier_config(recipe)
    straight = fit_classifier(config, load_taxonomy(), tmp_path / "straight", progress=False)
    cut = fit_classifier(config, load_taxonomy(), tmp_path / "cut", progress=False, stop_after=1)
    assert torch.load(str(cut.parent / "last.pt"), weights_only=False)["epoch"] == 1
    run = farz("train", "classify-fit", "--config", str(recipe), "--run", str(tmp_path / "cut"), "--resume")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "resuming" in run.stdout and "epoch 2/2: loss" in run.stdout and "epoch 1/2: loss" not in run.stdout
    a = torch.load(str(straight.parent / "last.pt"), weights_only=False)
    b = torch.load(str(cut.parent / "last.pt"), weights_only=False)
    assert a["epoch"] == b["epoch"] == 2 and a["rows"][-1]["loss"] == pytest.approx(b["rows"][-1]["loss"], rel=1e-4)
    for key, value in a["state_dict"].items():
        assert torch.allclose(value.float(), b["state_dict"][key].float(), atol=1e-5), key
    other = farz("train", "classify-fit", "--config", str(recipe), "--run", str(tmp_path / "cut"), "--resume", "--imgsz", "64")
    assert other.returncode == 3 and "other settings (imgsz: 48)" in other.stderr and "Traceback" not in other.stderr
    absent = farz("train", "classify-fit", "--config", str(recipe), "--run", str(tmp_path / "absent"), "--resume")
    assert absent.returncode == 3 and "nothing to resume" in absent.stderr and "Traceback" not in absent.stderr
