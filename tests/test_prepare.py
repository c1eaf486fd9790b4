"""``farz train prepare``: label mapping, deterministic splits, no near-duplicate across splits, report."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.prepare import PrepareError, dhash, near_duplicate_groups, prepare
from training.taxonomy import load_taxonomy


def photo(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (12, 16, 3)).astype(np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)
    return img


def coco_dataset(root: Path, n: int, labels: list[str]) -> Path:
    root.mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        cv2.imwrite(str(root / f"img{i}.jpg"), photo(i))
        images.append({"id": i, "file_name": f"img{i}.jpg", "width": 160, "height": 120})
        anns.append({"id": i, "image_id": i, "category_id": i % len(labels), "bbox": [10, 20, 40, 30], "iscrowd": 0})
    cats = [{"id": k, "name": name} for k, name in enumerate(labels)]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def test_coco_labels_are_mapped_onto_the_taxonomy(tmp_path: Path) -> None:
    ann = coco_dataset(tmp_path / "coco", 30, ["Drink can", "Plastic film", "Corrugated carton"])
    report = prepare([ann], tmp_path / "out", load_taxonomy())
    total = {name: sum(report["instances"][s][name] for s in report["instances"]) for name in ("metal", "plastic", "cardboard")}  # type: ignore[index]
    assert total == {"metal": 10, "plastic": 10, "cardboard": 10}
    label = next((tmp_path / "out" / "labels").rglob("000000_img0.txt")).read_text().split()
    assert label[0] == "2" and [round(float(v), 4) for v in label[1:]] == [0.1875, 0.2917, 0.25, 0.25]


def test_unmapped_labels_stop_the_run_with_their_names(tmp_path: Path) -> None:
    ann = coco_dataset(tmp_path / "coco", 4, ["Drink can", "Unicorn"])
    with pytest.raises(PrepareError, match="Unicorn"):
        prepare([ann], tmp_path / "out", load_taxonomy())
    report = prepare([ann], tmp_path / "out", load_taxonomy(), ignore_unmapped=True)
    assert report["unmapped_labels_ignored"] == ["Unicorn"]


def test_splits_are_deterministic_and_near_duplicates_never_cross_splits(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    ann = coco_dataset(root, 60, ["Drink can"])
    for i in range(60):  # a recompressed, brightened, resized copy of every image
        copy = cv2.resize(cv2.convertScaleAbs(photo(i), alpha=1.05, beta=4), (200, 150))
        cv2.imwrite(str(root / f"dup{i}.jpg"), copy, [cv2.IMWRITE_JPEG_QUALITY, 60])
    coco = json.loads(ann.read_text())
    coco["images"] += [{"id": 100 + i, "file_name": f"dup{i}.jpg", "width": 200, "height": 150} for i in range(60)]
    ann.write_text(json.dumps(coco))
    prepare([ann], tmp_path / "a", load_taxonomy())
    prepare([ann], tmp_path / "b", load_taxonomy())

    def split_of(out: Path) -> dict[str, str]:
        return {p.name.split("_", 1)[1].split(".")[0]: p.parent.name for p in (out / "images").rglob("*.jpg")}

    a, b = split_of(tmp_path / "a"), split_of(tmp_path / "b")
    assert a == b
    assert all(a[f"img{i}"] == a[f"dup{i}"] for i in range(60))
    assert len(set(a.values())) == 3


def test_dhash_tells_near_duplicates_from_different_images() -> None:
    h = [dhash(photo(1)), dhash(cv2.GaussianBlur(photo(1), (3, 3), 0)), dhash(photo(2))]
    assert near_duplicate_groups(h) == [0, 0, 2]
