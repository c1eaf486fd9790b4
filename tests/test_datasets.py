"""Taxonomy, cut-out masks and splits, and the conveyor generator's labels and truth."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from training.cutouts import item_mask, judge_mask, split_of
from training.synth import Cutout, VideoSpec, flat_item, place_item, render_training_image, render_video, visible_labels
from training.taxonomy import TaxonomyError, load_taxonomy

NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")


def test_taxonomy_v1_lists_the_six_classes_in_order_and_maps_source_labels() -> None:
    tax = load_taxonomy()
    assert tax.version == 1 and tax.names == NAMES
    assert tax.map_label("Drink can", "taco") == "metal"
    assert tax.map_label("PLASTIC") == "plastic"
    assert tax.map_label("unicorn") is None
    with pytest.raises(TaxonomyError):
        tax.index("unicorn")


def test_split_is_deterministic_and_close_to_80_10_10() -> None:
    names = [f"photo{i}.jpg" for i in range(3000)]
    first = [split_of(n) for n in names]
    assert first == [split_of(n) for n in names]
    shares = Counter(first)
    assert abs(shares["train"] / 3000 - 0.8) < 0.03 and abs(shares["test"] / 3000 - 0.1) < 0.02


def board_photo(item_scale: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A light board with a shading gradient and one dark-red ellipse; returns (photo, true mask)."""
    rng = np.random.default_rng(seed)
    h, w = 192, 256
    ramp = np.linspace(200, 235, w, dtype=np.float32)[None, :, None]
    photo = np.clip(np.repeat(np.repeat(ramp, h, 0), 3, 2) + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (128, 96), (int(w * item_scale), int(h * item_scale)), 20, 0, 360, 255, -1)
    photo[mask > 0] = (40, 40, 160)
    return photo, mask


def test_item_mask_finds_an_item_on_a_plain_board() -> None:
    photo, truth = board_photo()
    mask, board_std = item_mask(photo)
    iou = ((mask > 0) & (truth > 0)).sum() / ((mask > 0) | (truth > 0)).sum()
    assert iou > 0.9
    assert judge_mask(mask, board_std)[0] == "ok"


def test_an_item_that_fills_the_frame_is_rejected() -> None:
    photo, _ = board_photo(item_scale=0.7)
    mask, board_std = item_mask(photo)
    assert judge_mask(mask, board_std)[0] != "ok"


def test_a_mask_found_in_pieces_is_rejected() -> None:
    """A clear bottle's label and cap found without the bottle (two blobs far apart), or an item with a bite taken out."""
    solid = np.zeros((192, 256), np.uint8)
    cv2.ellipse(solid, (128, 96), (60, 40), 0, 0, 360, 255, -1)
    assert judge_mask(solid, 1.0)[0] == "ok"
    two_pieces = np.zeros_like(solid)
    cv2.circle(two_pieces, (60, 96), 25, 255, -1)
    cv2.circle(two_pieces, (190, 96), 22, 255, -1)
    assert judge_mask(two_pieces, 1.0)[0] == "mask in pieces or bitten (item partly found)"
    bitten = solid.copy()  # one piece, its middle taken for board
    cv2.circle(bitten, (150, 96), 35, 0, -1)  # fills 0.50 of its hull
    assert judge_mask(bitten, 1.0)[0] == "mask in pieces or bitten (item partly found)"
    ragged = solid.copy()  # a whole item of ragged outline (a crumpled wrapper) stays
    cv2.circle(ragged, (160, 96), 40, 0, -1)  # 0.73
    assert judge_mask(ragged, 1.0)[0] == "ok"


def coloured_cutouts() -> list[Cutout]:
    items = []
    for class_id in range(len(NAMES)):
        rgba = np.zeros((60, 40, 4), np.uint8)
        rgba[..., :3] = ((class_id * 40) % 255, 200 - class_id * 20, 100 + class_id * 20)
        rgba[5:55, 5:35, 3] = 255
        items.append(Cutout(rgba, class_id, f"c{class_id}"))
    return items


def test_training_images_have_labels_inside_the_image_for_known_classes() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        image, labels = render_training_image(coloured_cutouts(), rng, size=(240, 180))
        assert image.shape[2] == 3 and image.dtype == np.uint8
        for cid, (x, y, w, h) in zip(labels.class_ids, labels.boxes, strict=True):
            assert 0 <= cid < len(NAMES)
            assert x - w / 2 + 1e-6 >= 0 and x + w / 2 <= 1 + 1e-6 and y - h / 2 + 1e-6 >= 0 and y + h / 2 <= 1 + 1e-6


def test_closeup_scenes_hold_few_large_items_and_leave_belt_scenes_as_they_were() -> None:
    cutouts = coloured_cutouts()
    plain, no_closeups = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(5):  # closeup=0 draws nothing extra: old recipes render the same scenes
        a, b = (
            render_training_image(cutouts, plain, size=(240, 180)),
            render_training_image(cutouts, no_closeups, size=(240, 180), closeup=0.0),
        )
        assert np.array_equal(a[0], b[0]) and a[1].boxes == b[1].boxes
    rng = np.random.default_rng(5)
    near = [render_training_image(cutouts, rng, size=(240, 180), closeup=1.0)[1] for _ in range(30)]
    far = [render_training_image(cutouts, rng, size=(240, 180))[1] for _ in range(30)]
    assert all(len(labels.boxes) <= 3 for labels in near) and max(len(labels.boxes) for labels in far) > 3

    def median_side(scenes: list[object]) -> float:
        return float(np.median([max(w, h) for labels in scenes for (_x, _y, w, h) in labels.boxes]))  # type: ignore[attr-defined]

    assert median_side(near) > 2 * median_side(far)


def test_loaded_belt_scenes_hold_many_touching_items_each_boxed_and_leave_other_scenes_as_they_were() -> None:
    cutouts = coloured_cutouts()
    plain, no_crowds = np.random.default_rng(6), np.random.default_rng(6)
    for _ in range(5):  # crowded=0 draws nothing extra: old recipes render the same scenes
        a = render_training_image(cutouts, plain, size=(240, 180), closeup=0.25)
        b = render_training_image(cutouts, no_crowds, size=(240, 180), closeup=0.25, crowded=0.0)
        assert np.array_equal(a[0], b[0]) and a[1].boxes == b[1].boxes
    rng = np.random.default_rng(7)
    crowded = [render_training_image(cutouts, rng, size=(240, 180), crowded=1.0)[1] for _ in range(30)]
    assert np.mean([len(labels.boxes) for labels in crowded]) >= 5
    touching = 0
    for labels in crowded:
        boxes = np.array([(x - w / 2, y - h / 2, x + w / 2, y + h / 2) for x, y, w, h in labels.boxes])
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                overlap_w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
                overlap_h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
                touching += overlap_w > 0 and overlap_h > 0
        assert all(0 <= v <= 1 + 1e-6 for box in labels.boxes for v in box)
    assert touching >= 30, "items on a loaded belt touch and overlap"


def test_an_item_is_labelled_only_when_enough_of_it_is_in_sight() -> None:
    under = np.zeros((40, 60), np.float32)
    under[10:30, 10:30] = 1.0  # 400 px
    over = np.zeros((40, 60), np.float32)
    over[5:35, 20:50] = 1.0  # covers half of `under`
    assert len(visible_labels([under, over], [0, 1]).boxes) == 2  # half in sight >= 0.35
    strict = visible_labels([under, over], [0, 1], min_visible=0.6)
    assert strict.class_ids == [1], "an item half under another is left unlabelled"
    x, _y, w, _h = visible_labels([under, over], [0, 1]).boxes[0]
    assert (round(x * 60 - w * 30), round(x * 60 + w * 30)) == (10, 20), "the box is of its visible part"


def test_scenes_with_a_stricter_label_rule_differ_only_in_their_labels() -> None:
    cutouts = coloured_cutouts()
    a_rng, b_rng = np.random.default_rng(8), np.random.default_rng(8)
    dropped = 0
    for _ in range(10):
        a = render_training_image(cutouts, a_rng, size=(240, 180), crowded=1.0)
        b = render_training_image(cutouts, b_rng, size=(240, 180), crowded=1.0, min_visible=0.6)
        assert np.array_equal(a[0], b[0]) and set(b[1].boxes) <= set(a[1].boxes)
        dropped += len(a[1].boxes) - len(b[1].boxes)
    assert dropped > 0


def test_without_flat_or_square_items_a_seed_renders_the_scenes_it_rendered_before() -> None:
    """``flat`` and ``square`` at 0 draw no random number: older recipes' seeds keep their scenes."""
    cutouts = coloured_cutouts()
    a_rng, b_rng = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(8):
        a = render_training_image(cutouts, a_rng, size=(240, 180), closeup=0.2, crowded=0.3, camera=0.3)
        b = render_training_image(cutouts, b_rng, size=(240, 180), closeup=0.2, crowded=0.3, camera=0.3, flat=0.0, square=0.0)
        assert np.array_equal(a[0], b[0]) and a[1].boxes == b[1].boxes


def test_a_flat_item_is_an_opaque_straight_edged_rectangle_of_the_asked_length() -> None:
    for seed in range(20):
        item = flat_item(120.0, np.random.default_rng(seed))
        h, w = item.shape[:2]
        assert w == 120 and 0.4 * 120 - 1 <= h <= 120 and (item[..., 3] == 255).all()


def test_square_items_lie_as_photographed_and_flat_ones_take_the_place_of_cut_outs() -> None:
    cutout = coloured_cutouts()[2]  # opaque 50 x 30 px inside its 60 x 40 picture
    for seed in range(20):
        rng = np.random.default_rng(seed)
        item, class_id = place_item(cutout, 120.0, rng, square=1.0)
        ys, xs = np.nonzero(item[..., 3] > 127)
        extent = sorted((int(np.ptp(ys)) + 1, int(np.ptp(xs)) + 1))
        assert class_id == 2 and abs(extent[0] - 60) <= 5 and abs(extent[1] - 100) <= 5, "square within 2 degrees"
    flat = [place_item(cutout, 120.0, np.random.default_rng(seed), flat=1.0) for seed in range(20)]
    assert all(c == 2 and (item[..., :3] != cutout.rgba[0, 0, :3]).any() for item, c in flat)
    opaque = [item[..., 3] > 127 for item, _ in flat]
    fills = [m.sum() / (m.any(axis=0).sum() * m.any(axis=1).sum()) for m in opaque]  # a square rectangle fills its box
    assert 5 <= sum(f > 0.9 for f in fills) <= 15, "about half the flat items lie square"


@pytest.mark.parametrize(("direction", "count_as"), [("right", "in"), ("down", "out"), ("left", "in"), ("up", "out")])
def test_video_truth_counts_every_item_that_crosses_exactly_once(tmp_path: Path, direction: str, count_as: str) -> None:
    spec = VideoSpec(width=240, height=160, fps=10, seconds=6, direction=direction, speed=12, rate=2.0, seed=5)
    truth = render_video(coloured_cutouts(), NAMES, spec, tmp_path / "v.mp4", line_in=count_as == "in")
    counts = truth["counts"]
    assert isinstance(counts, dict)
    assert sum(counts[count_as].values()) == truth["items"] > 0
    assert counts["in" if count_as == "out" else "out"] == {}
    saved = json.loads((tmp_path / "v.truth.json").read_text())
    assert saved["counts"] == counts
    crossings = saved["crossings"]  # one per item: at the line, in the counted direction, in frame order
    assert len(crossings) == truth["items"] and all(c["direction"] == count_as for c in crossings)
    assert [c["frame"] for c in crossings] == sorted(c["frame"] for c in crossings)
    across = "x" if direction in ("left", "right") else "y"
    step = max(abs(c["vx"]) + abs(c["vy"]) for c in crossings)
    assert all(abs(c[across] - 0.5) <= step for c in crossings)
    assert sorted(c["class"] for c in crossings) == sorted(n for n, k in counts[count_as].items() for _ in range(k))
    assert cv2.VideoCapture(str(tmp_path / "v.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 60
    from device.count_config import load_count_settings

    assert load_count_settings(tmp_path / "v.yaml").line_specs()[0].x1 == truth["line"][0]  # type: ignore[index]


def test_shipped_training_configs_validate_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    from training.config import ConfigError, load_train_config

    configs = Path(__file__).resolve().parent.parent / "training" / "configs"
    default = load_train_config(configs / "default.yaml")
    finetune = load_train_config(configs / "finetune.yaml")
    assert default.init is None and default.imgsz == finetune.imgsz == 320
    assert finetune.init == Path("runs/farz-waste-n/weights/last.pt") and finetune.cos_lr and finetune.lr0 < default.lr0
    assert not default.synth.photos and load_train_config(configs / "continue.yaml").synth.photos  # off unless a recipe asks
    crowded = load_train_config(configs / "item-crowded.yaml")
    second = load_train_config(configs / "item-crowded2.yaml")  # goes on from the first run's best weights
    assert (
        second.single_class and second.init == Path("runs/farz-item-crowded-n/weights/best.pt") and second.synth.seed != crowded.synth.seed
    )
    assert crowded.single_class and crowded.synth.crowded == 0.4 and crowded.init == Path("runs/farz-item-n/weights/best.pt")
    third = load_train_config(configs / "item-crowded3.yaml")  # the shipped run: a stricter label rule
    assert third.single_class and third.init == second.init and third.synth.min_visible > crowded.synth.min_visible
    camera = load_train_config(configs / "item-camera.yaml")  # goes on from the shipped run, a share of scenes seen by a camera
    assert camera.init == Path("runs/farz-item-crowded3-n/weights/best.pt") and camera.synth.camera > 0
    assert camera.synth.min_visible == third.synth.min_visible and camera.synth.seed not in (second.synth.seed, third.synth.seed)
    assert third.synth.camera == 0.0  # off unless a recipe asks: older recipes render the scenes they rendered
    gpu = load_train_config(configs / "gpu.yaml")
    assert gpu.init == Path("models/farz-waste.onnx") and gpu.synth.shards == gpu.workers == 16 and gpu.cutouts == Path(".gpu/cutouts")
    assert gpu.single_class and gpu.synth.min_visible == third.synth.min_visible  # it goes on from the shipped item detector
    assert gpu.init.is_absolute() or (configs.parent.parent / gpu.init).is_file()  # the shipped file it continues from
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_train_config(bad)


def test_fit_with_missing_init_weights_stops_before_any_work_with_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "ft.yaml"
    config.write_text(f"name: ft\ninit: {tmp_path / 'nope' / 'last.pt'}\n")
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "farz", "train", "fit", "--config", str(config), "--run", str(run)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "init weights not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not run.exists()


def test_photo_set_boxes_each_held_out_photo_around_its_item(tmp_path: Path) -> None:
    from training.cutouts import make_cutouts, write_photo_set
    from training.evaluate import YoloSplit, load_yolo_split, read_labels

    taxonomy = load_taxonomy()
    source = tmp_path / "photos"
    (source / "glass").mkdir(parents=True)
    truth = {}
    for seed in range(6):
        photo, mask = board_photo(item_scale=0.2 + 0.03 * seed, seed=seed)
        name = f"glass{seed}.jpg"
        cv2.imwrite(str(source / "glass" / name), photo)
        ys, xs = np.nonzero(mask)
        truth[f"photo-glass-glass{seed}"] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    results = make_cutouts(source, tmp_path / "cutouts", taxonomy, workers=1)
    split = results[0].split
    data = write_photo_set(tmp_path / "cutouts", source, tmp_path / "set", taxonomy.names, split)
    images = load_yolo_split(data, "val").images
    expected = sorted(f"photo-glass-{Path(r.source).stem}" for r in results if r.accepted and r.split == split)
    assert sorted(p.stem for p in images) == expected
    for image in images:
        h, w = cv2.imread(str(image)).shape[:2]
        classes, boxes = read_labels(YoloSplit.label_path(image), w, h)
        assert classes.tolist() == [taxonomy.names.index("glass")]
        np.testing.assert_allclose(boxes[0], truth[image.stem], atol=0.03 * max(w, h))


def test_photo_set_says_what_is_missing(tmp_path: Path) -> None:
    from training.cutouts import make_cutouts, write_photo_set

    names = load_taxonomy().names
    with pytest.raises(FileNotFoundError, match="run `farz datasets cutouts` first"):
        write_photo_set(tmp_path / "no-cutouts", tmp_path, tmp_path / "set", names)
    source = tmp_path / "photos"
    (source / "glass").mkdir(parents=True)
    cv2.imwrite(str(source / "glass" / "glass0.jpg"), board_photo()[0])
    result = make_cutouts(source, tmp_path / "cutouts", load_taxonomy(), workers=1)[0]
    (source / "glass" / "glass0.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="missing or unreadable"):
        write_photo_set(tmp_path / "cutouts", source, tmp_path / "set", names, result.split)


def photos_cut_out(root: Path, label: str, count: int) -> tuple[Path, list[Any], Counter[str]]:
    """``count`` board photos of one class in ``root/photos/<label>``, cut out into ``root/cutouts``:
    (the photo folder, the cut-out results, accepted cut-outs per split)."""
    from training.cutouts import make_cutouts

    source = root / "photos"
    (source / label).mkdir(parents=True)
    for seed in range(count):
        # every fifth file number: the runs of ten numbers that go to one split by item reach all three splits
        cv2.imwrite(str(source / label / f"{label}{1 + 5 * seed}.jpg"), board_photo(item_scale=0.2 + 0.01 * seed, seed=seed)[0])
    results = make_cutouts(source, root / "cutouts", load_taxonomy(), workers=1)
    return source, results, Counter(r.split for r in results if r.accepted)


def test_real_photos_join_the_renders_of_their_own_split_only(tmp_path: Path) -> None:
    from training.evaluate import YoloSplit, load_yolo_split, read_labels
    from training.fit import add_photos
    from training.synth import write_training_set

    taxonomy = load_taxonomy()
    source, results, accepted = photos_cut_out(tmp_path, "metal", 24)
    assert accepted["train"] and accepted["val"]  # the names above land in both splits
    data = write_training_set(tmp_path / "cutouts", tmp_path / "set", taxonomy.names, {"train": 3, "val": 2}, seed=1)
    added = add_photos(tmp_path / "cutouts", source, tmp_path / "set", taxonomy.names, ["train", "val"])
    assert added == {"train": accepted["train"], "val": accepted["val"]}
    for split, renders in (("train", 3), ("val", 2)):
        images = load_yolo_split(data, split).images
        photos = sorted(p.stem for p in images if p.stem.startswith("photo-"))
        assert len(images) == renders + added[split]
        assert photos == sorted(f"photo-metal-{Path(r.source).stem}" for r in results if r.accepted and r.split == split)
        for image in images:
            if image.stem.startswith("photo-"):
                h, w = cv2.imread(str(image)).shape[:2]
                assert read_labels(YoloSplit.label_path(image), w, h)[0].tolist() == [taxonomy.names.index("metal")]
    with pytest.raises(FileNotFoundError, match="source photos not found"):
        add_photos(tmp_path / "cutouts", tmp_path / "nowhere", tmp_path / "set", taxonomy.names, ["train"])


def test_shards_render_the_same_scenes_with_any_number_of_workers_and_one_shard_is_the_single_stream(tmp_path: Path) -> None:
    from training.synth import load_cutouts, write_training_set

    cutouts = tmp_path / "cutouts"
    for item in coloured_cutouts():
        (cutouts / "train" / NAMES[item.class_id]).mkdir(parents=True)
        cv2.imwrite(str(cutouts / "train" / NAMES[item.class_id] / f"{item.name}.png"), item.rgba)

    def rendered(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".yaml"}

    sets = {}
    for name, shards, workers in (("single", 1, 1), ("one-worker", 3, 1), ("two-workers", 3, 2)):
        write_training_set(cutouts, tmp_path / name, NAMES, {"train": 7}, seed=5, shards=shards, workers=workers)
        sets[name] = rendered(tmp_path / name)
    assert sets["one-worker"] == sets["two-workers"] and len(sets["one-worker"]) == 14  # 7 images + 7 label files
    assert sets["single"] != sets["one-worker"]
    single_stream = np.random.default_rng([5, 0])  # one generator per split, as older recipes rendered
    first, _ = render_training_image(load_cutouts(cutouts, NAMES, "train"), single_stream)
    assert np.abs(cv2.imread(str(tmp_path / "single" / "images" / "train" / "000000.jpg")).astype(int) - first).mean() < 3  # JPEG


def test_a_pack_holds_train_and_val_as_webp_with_photos_and_renders_without_the_source(tmp_path: Path) -> None:
    from training.fit import add_photos
    from training.pack import PackError, pack_cutouts
    from training.synth import load_cutouts, write_training_set

    taxonomy = load_taxonomy()
    source, _, accepted = photos_cut_out(tmp_path, "paper", 30)
    assert accepted["train"] and accepted["val"] and accepted["test"]
    pack = pack_cutouts(tmp_path / "cutouts", source, tmp_path / "pack", taxonomy.names, photo_side=200)
    assert pack.cutouts == pack.photos == {"train": accepted["train"], "val": accepted["val"]}
    report = json.loads((tmp_path / "pack" / "report.json").read_text())
    assert not (tmp_path / "pack" / "test").exists() and "test" not in {r["split"] for r in report["items"]}  # held out stays here
    for split in ("train", "val"):
        packed = load_cutouts(tmp_path / "pack", taxonomy.names, split)
        original = load_cutouts(tmp_path / "cutouts", taxonomy.names, split)
        assert [c.name for c in packed] == [c.name for c in original]
        for a, b in zip(packed, original, strict=True):
            assert a.rgba.shape == b.rgba.shape and np.abs(a.rgba[..., 3].astype(int) - b.rgba[..., 3]).mean() < 4
    assert max(cv2.imread(str(p)).shape[1] for p in (tmp_path / "pack" / "photos" / "images" / "train").glob("*.jpg")) == 200
    data = write_training_set(tmp_path / "pack", tmp_path / "set", taxonomy.names, {"train": 2, "val": 1}, seed=1)
    added = add_photos(tmp_path / "pack", tmp_path / "no-source-here", tmp_path / "set", taxonomy.names, ["train", "val"])
    assert added == pack.photos
    assert len(list((tmp_path / "set" / "labels" / "train").glob("photo-*.txt"))) == accepted["train"] and data.is_file()
    again = pack_cutouts(tmp_path / "cutouts", None, tmp_path / "pack", taxonomy.names)  # an earlier pack is replaced
    assert again.photos == {"train": 0, "val": 0}
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    with pytest.raises(PackError, match="is not a pack"):
        pack_cutouts(tmp_path / "cutouts", None, tmp_path / "keep", taxonomy.names)
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"


def test_a_pack_holds_the_classifiers_train_and_val_photos_by_item_and_never_test(tmp_path: Path) -> None:
    from training.classify_data import class_folder_images
    from training.cutouts import item_split
    from training.pack import pack_class_photos

    trashnet = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "trashnet"
    if not trashnet.is_dir():
        pytest.skip("../shared/datasets/trashnet is not beside the project")
    names = load_taxonomy().names
    source = tmp_path / "source"
    for name in names:
        (source / name).mkdir(parents=True)
        photos = sorted((trashnet / name).glob("*.jpg"))
        for split, n in (("train", 4), ("val", 2), ("test", 2)):
            for p in [p for p in photos if item_split(p.name) == split][:n]:
                (source / name / p.name).write_bytes(p.read_bytes())
    count = pack_class_photos(source, tmp_path / "classes", names, side=160)
    packed = sorted((tmp_path / "classes").rglob("*.webp"))
    expected = [p for p in sorted(source.rglob("*.jpg")) if item_split(p.name) in ("train", "val")]
    assert count == len(packed) == len(expected) and {p.stem for p in packed} == {p.stem for p in expected}
    assert max(max(cv2.imread(str(p)).shape[:2]) for p in packed) == 160
    assert len(class_folder_images(tmp_path / "classes", names, "val")) == sum(item_split(p.name) == "val" for p in expected)


def test_results_csv_is_read_without_polars(tmp_path: Path) -> None:
    from training.fit import read_results_csv

    csv = tmp_path / "results.csv"
    csv.write_text("epoch,time,metrics/mAP50(B)\n1,10.5,0.25\n2,20.0,0.3\n")
    assert read_results_csv(csv) == {"epoch": [1.0, 2.0], "time": [10.5, 20.0], "metrics/mAP50(B)": [0.25, 0.3]}
    assert read_results_csv(tmp_path / "missing.csv") == {}


def test_split_by_item_keeps_runs_of_file_numbers_together_with_gaps_between_splits() -> None:
    from training.cutouts import ITEM_GAP, ITEM_RUN, item_split

    splits = {n: item_split(f"glass{n}.jpg") for n in range(1, 601)}
    for n in range(1, 600):
        a, b = splits[n], splits[n + 1]
        if a is not None and b is not None and a != b:
            pytest.fail(f"glass{n} ({a}) and glass{n + 1} ({b}) are neighbours in different splits: one item may be on both sides")
    runs = {(n - 1) // ITEM_RUN: splits[n] for n in splits if (n - 1) % ITEM_RUN >= ITEM_GAP}
    shares = Counter(runs.values())
    assert shares["train"] == 48 and shares["val"] == 6 and shares["test"] == 6  # 8 / 1 / 1 of every ten runs
    assert item_split("glass-no-number.jpg") in {"train", "val", "test"}
    assert [item_split(f"trash{n}.jpg") for n in range(1, 11)] == [item_split(f"trash{n}.jpg") for n in range(1, 11)]


def test_a_video_at_rate_zero_is_an_empty_belt_for_counting_false_items(tmp_path: Path) -> None:
    spec = VideoSpec(width=160, height=96, fps=10, seconds=2, direction="down", speed=9, rate=0.0, seed=3)
    truth = render_video(coloured_cutouts(), NAMES, spec, tmp_path / "empty.mp4")
    assert truth["items"] == 0 and truth["crossings"] == [] and truth["counts"] == {"in": {}, "out": {}}
    assert cv2.VideoCapture(str(tmp_path / "empty.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 20
