"""The classifier's data and recipe, without torch: config validation names the field, class weights
re-balance as documented, belt crops and photo crops have the crop's shape, scores are the usual ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.classify_data import ClassifyDataError, belt_crop, class_folder_images, photo_crop
from training.classify_epochs import class_weights
from training.classify_eval import scores
from training.classify_fit import load_classifier_config
from training.config import ConfigError
from training.synth import Cutout

REPO = Path(__file__).resolve().parent.parent
NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")


def test_the_shipped_recipes_validate() -> None:
    for name in ("classifier.yaml", "classifier-continue.yaml", "classifier-shipped.yaml"):
        config = load_classifier_config(REPO / "training" / "configs" / name)
        assert config.arch == "efficientnet-lite0" and config.imgsz == 224


def test_a_bad_recipe_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("imgsz: 224\nepoch: 3\nbalance: 2\n")
    with pytest.raises(
        ConfigError, match=r"bad.yaml: balance: Input should be less than or equal to 1; epoch: Extra inputs are not permitted"
    ):
        load_classifier_config(bad)


def test_class_weights_draw_rare_classes_more_often_by_the_power_given() -> None:
    ids = [0] * 400 + [1] * 100
    w = class_weights(ids, 2, 0.5)
    assert w.sum() == pytest.approx(1.0)
    share_rare = w[400:].sum()
    assert share_rare == pytest.approx(100**0.5 / (400**0.5 + 100**0.5))  # n_c ** (1 - balance) per class
    assert class_weights(ids, 2, 0.0)[400:].sum() == pytest.approx(0.2)
    assert class_weights(ids, 2, 1.0)[400:].sum() == pytest.approx(0.5)


def test_belt_and_photo_crops_have_the_crop_shape() -> None:
    rng = np.random.default_rng(0)
    rgba = np.zeros((50, 30, 4), np.uint8)
    rgba[5:45, 5:25] = (40, 200, 90, 255)
    items = [Cutout(rgba, k, str(k)) for k in range(3)]
    for _ in range(12):
        assert belt_crop(items[0], items, 64, rng).shape == (64, 64, 3)
    photo = np.full((384, 512, 3), 200, np.uint8)
    assert photo_crop(photo, 64, rng).shape == photo_crop(photo, 64, None).shape == (64, 64, 3)


@pytest.mark.parametrize("poor_camera", [0.0, 0.5])
def test_epochs_made_in_processes_depend_on_the_seed_and_epoch_not_the_workers(poor_camera: float) -> None:
    from training.classify_data import Labelled
    from training.classify_epochs import CHUNK, EpochMaker, EpochRecipe

    rng = np.random.default_rng(1)
    photos = [Labelled(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), k % 3, f"p{k}") for k in range(CHUNK + 40)]
    rgba = np.zeros((50, 30, 4), np.uint8)
    rgba[5:45, 5:25] = (40, 200, 90, 255)
    cutouts = [Cutout(rgba, k, str(k)) for k in range(3)]
    recipe = EpochRecipe(imgsz=32, batch=16, balance=0.3, belt_crops_per_epoch=0.5, seed=4, poor_camera=poor_camera)
    made = {}
    for workers in (1, 3):
        maker = EpochMaker(photos, cutouts, recipe, 3, workers)
        try:
            made[workers] = [maker.batches(1, 2), maker.batches(2, 2)]
        finally:
            maker.close()
    examples = sum(len(labels) for _, labels in made[1][0])
    assert examples == len(photos) + round(len(photos) * 0.5) and made[1][0][0][0].shape == (16, 32, 32, 3)
    for a, b in zip(made[1], made[3], strict=True):
        assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(made[1][0][0][0], made[1][1][0][0])  # another epoch, other data


def test_class_folders_must_be_classes_and_hold_images(tmp_path: Path) -> None:
    with pytest.raises(ClassifyDataError, match="no such folder"):
        class_folder_images(tmp_path / "absent", NAMES)
    (tmp_path / "wood").mkdir()
    with pytest.raises(ClassifyDataError, match=r"\['wood'\] are not classes"):
        class_folder_images(tmp_path, NAMES)


def test_scores_give_accuracy_macro_f1_and_confusion_rows_true() -> None:
    truth = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 2])
    result = scores(truth, predicted, ("a", "b", "c"))
    assert result["accuracy"] == 0.8 and result["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    assert result["per_class"]["b"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}  # type: ignore[index]
    assert result["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 1.0) / 3, abs=1e-4)


def test_a_cut_out_is_judged_on_the_background_given_not_on_its_hidden_pixels(tmp_path: Path) -> None:
    import sys

    import cv2

    sys.path.insert(0, str(REPO / "tests"))
    from colour_classifier import write_colour_classifier

    from training.classify_eval import classify_eval, cutout_crop

    model = write_colour_classifier(tmp_path / "colour.onnx", names=NAMES)  # redder: cardboard, bluer: glass
    data = tmp_path / "cutouts"
    for name in NAMES:
        (data / name).mkdir(parents=True)
    ring = np.zeros((64, 64, 4), np.uint8)
    ring[..., 0] = 255  # hidden pixels are blue: read without its alpha, the cut-out would look like glass
    cv2.circle(ring, (32, 32), 18, (0, 0, 255, 255), thickness=3)
    cv2.imwrite(str(data / "cardboard" / "ring.png"), ring)
    cv2.imwrite(str(data / "glass" / "photo.jpg"), np.full((48, 64, 3), (200, 60, 40), np.uint8))
    for name in NAMES[2:]:
        cv2.imwrite(str(data / name / "grey.jpg"), np.full((48, 64, 3), 128, np.uint8))

    on_grey = classify_eval(model, data, background="grey")
    assert on_grey["cutouts"] == 1 and on_grey["background"] == "grey" and on_grey["images"] == 6
    assert on_grey["confusion"][0][0] == 1 and on_grey["confusion"][1][1] == 1  # type: ignore[index]
    on_blue = classify_eval(model, data, background="blue")  # a thin red ring on blue is bluer than red
    assert on_blue["confusion"][0][1] == 1  # type: ignore[index]
    with pytest.raises(ClassifyDataError, match="no opaque pixel"):
        cutout_crop(np.zeros((8, 8, 4), np.uint8), 32, (120, 120, 120))
    with pytest.raises(ClassifyDataError, match="background 'purple' is not one of"):
        classify_eval(model, data, background="purple")


def test_the_command_offers_every_background() -> None:
    from farz.cli import build_parser
    from training.classify_eval import BACKGROUNDS

    parser = build_parser()
    for name in BACKGROUNDS:
        assert parser.parse_args(["train", "classify-eval", "--data", "x", "--background", name]).background == name
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "classify-eval", "--data", "x", "--background", "purple"])


def test_epochs_are_made_in_processes_after_crops_were_classified_in_this_process(tmp_path: Path) -> None:
    """Forked data workers once hung in their first OpenCV call when this process had classified crops
    before (OpenCV's thread pool does not survive a fork): the two tests in one fresh process, with a timeout."""
    import subprocess
    import sys

    script = tmp_path / "crops_then_epochs.py"
    script.write_text(
        "import sys, tempfile\nfrom pathlib import Path\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        "from test_material import test_a_tracks_later_crops_are_seen_turned as crops\n"
        "from test_classify_data import test_epochs_made_in_processes_depend_on_the_seed_and_epoch_not_the_workers as epochs\n"
        "crops(Path(tempfile.mkdtemp()))\nepochs(0.5)\nprint('made')\n"
    )
    try:
        run = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the data workers hung (forked while OpenCV had threads?)")
    assert run.returncode == 0 and run.stdout.strip() == "made", run.stderr[-2000:]


def test_a_share_of_belt_crops_is_seen_by_a_poorer_camera_and_none_at_zero() -> None:
    from training.classify_data import Labelled
    from training.classify_epochs import EpochRecipe, epoch_batches

    photos = [Labelled(np.full((60, 80, 3), 90 + k, np.uint8), k % 3, f"p{k}") for k in range(12)]
    rgba = np.zeros((50, 30, 4), np.uint8)
    rgba[5:45, 5:25] = (40, 200, 90, 255)
    cutouts = [Cutout(rgba, k, str(k)) for k in range(3)]

    def epoch(poor_camera: float) -> list[np.ndarray]:
        recipe = EpochRecipe(imgsz=32, batch=4, balance=0.3, belt_crops_per_epoch=1.0, seed=4, poor_camera=poor_camera)
        return [crops for crops, _ in epoch_batches(photos, cutouts, recipe, np.random.default_rng(7), 3)]

    assert all(np.array_equal(a, b) for a, b in zip(epoch(0.0), epoch(0.0), strict=True))
    plain, poor = np.concatenate(epoch(0.0)), np.concatenate(epoch(1.0))
    assert plain.shape == poor.shape and not np.array_equal(np.sort(plain, axis=None), np.sort(poor, axis=None))
