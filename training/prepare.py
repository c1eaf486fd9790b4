"""``farz train prepare``: ordinary detection data (YOLO, COCO, folders of labelled photos) → one YOLO
dataset in the taxonomy, split deterministically with no near-duplicate across splits.

- Labels are mapped onto the taxonomy (``datasets/taxonomy.yaml``: class names, then the source's map);
  an unmapped label stops the run with the list of them unless ``ignore_unmapped`` is set.
- Near-duplicates are found by a 64-bit difference hash (dHash) and Hamming distance; each group of
  near-duplicates goes to a single split, chosen by a hash of the group's first file, so the split of
  an image never depends on what else is in the dataset except its duplicates.
- A report gives images and instances per class and split.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from training.cutouts import (
    SPLITS,
    item_mask,
    item_split,
    judge_mask,
    split_of,
)
from training.evaluate import IMAGE_SUFFIXES
from training.taxonomy import Taxonomy


class PrepareError(ValueError):
    """A source cannot be read or its labels cannot be mapped; the message says which and how to fix it."""


@dataclass
class Sample:
    """One image with its boxes: class names (source labels) and normalised cx, cy, w, h."""

    image: Path
    labels: list[str] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    source: str = ""


def _yolo_names(spec: dict[str, object]) -> list[str]:
    names = spec.get("names")
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise PrepareError("data.yaml has no `names`")


def read_yolo(data_yaml: Path) -> list[Sample]:
    """Every image of every split of a YOLO dataset (its data.yaml), with source labels."""
    spec = yaml.safe_load(data_yaml.read_text()) or {}
    names = _yolo_names(spec)
    root = Path(spec.get("path") or data_yaml.parent)
    root = root if root.is_absolute() else data_yaml.parent / root
    samples = []
    for key in ("train", "val", "test"):
        if not spec.get(key):
            continue
        for image in sorted(p for p in (root / str(spec[key])).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            parts = list(image.parts)
            idx = len(parts) - 1 - parts[::-1].index("images")
            label_file = Path(*parts[:idx], "labels", *parts[idx + 1 :]).with_suffix(".txt")
            sample = Sample(image, source="yolo")
            if label_file.is_file():
                for line in label_file.read_text().splitlines():
                    v = line.split()
                    if len(v) >= 5:
                        sample.labels.append(names[int(v[0])])
                        sample.boxes.append((float(v[1]), float(v[2]), float(v[3]), float(v[4])))
            samples.append(sample)
    return samples


def read_coco(annotations: Path, images_dir: Path | None = None) -> list[Sample]:
    """Images of a COCO detection file (``bbox`` in pixels, x, y, w, h), with category names."""
    coco = json.loads(annotations.read_text())
    cats = {c["id"]: c["name"] for c in coco.get("categories", [])}
    folder = images_dir or annotations.parent
    by_image: dict[int, Sample] = {}
    sizes: dict[int, tuple[int, int]] = {}
    for img in coco.get("images", []):
        by_image[img["id"]] = Sample(folder / img["file_name"], source="coco")
        sizes[img["id"]] = (int(img["width"]), int(img["height"]))
    for ann in coco.get("annotations", []):
        sample = by_image.get(ann["image_id"])
        if sample is None or ann.get("iscrowd"):
            continue
        w, h = sizes[ann["image_id"]]
        x, y, bw, bh = ann["bbox"]
        sample.labels.append(cats[ann["category_id"]])
        sample.boxes.append(((x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h))
    return list(by_image.values())


def read_photo_folders(root: Path) -> list[Sample]:
    """``root/<label>/*.jpg``: one item per photo on a plain background; the box comes from the item's
    mask (as for cut-outs). Photos whose mask is unreliable are left out."""
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
            if image is None:
                continue
            scale = 256 / max(image.shape[:2])
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            mask, board_std = item_mask(small)
            if judge_mask(mask, board_std)[0] != "ok":
                continue
            ys, xs = np.nonzero(mask)
            h, w = mask.shape
            box = (
                (xs.min() + xs.max() + 1) / 2 / w,
                (ys.min() + ys.max() + 1) / 2 / h,
                (xs.max() + 1 - xs.min()) / w,
                (ys.max() + 1 - ys.min()) / h,
            )
            samples.append(Sample(photo, [folder.name], [box], source="photos"))
    return samples


def write_photo_eval_set(source: Path, out: Path, taxonomy: Taxonomy, split: str = "test") -> int:
    """The real, un-composited photos of one cut-out split (default: test, never trained on) as a YOLO
    dataset with one box per photo from its mask; returns how many photos it holds."""
    samples = [s for s in read_photo_folders(source) if item_split(s.image.name) == split]
    (out / "images" / "val").mkdir(parents=True, exist_ok=True)
    (out / "labels" / "val").mkdir(parents=True, exist_ok=True)
    for s in samples:
        name = taxonomy.map_label(s.labels[0])
        if name is None:
            continue
        shutil.copy(s.image, out / "images" / "val" / s.image.name)
        x, y, w, h = s.boxes[0]
        (out / "labels" / "val" / f"{s.image.stem}.txt").write_text(f"{taxonomy.index(name)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n")
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(taxonomy.names))
    (out / "data.yaml").write_text(f"path: {out.resolve()}\nval: images/val\nnames:\n{names}")
    return len(samples)


def read_source(path: Path) -> list[Sample]:
    """Detect the kind of ``path``: data.yaml / YOLO folder, COCO .json, or folders of labelled photos."""
    if path.suffix == ".json":
        return read_coco(path)
    if path.suffix in {".yaml", ".yml"}:
        return read_yolo(path)
    if (path / "data.yaml").is_file():
        return read_yolo(path / "data.yaml")
    jsons = sorted(path.glob("*.json"))
    if jsons:
        return read_coco(jsons[0])
    if path.is_dir():
        return read_photo_folders(path)
    raise PrepareError(f"{path}: not a YOLO dataset (data.yaml), a COCO .json, or a folder of <label>/ photo folders")


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash of an image (robust to resizing, recompression, small brightness changes)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def near_duplicate_groups(hashes: list[int], max_distance: int = 6) -> list[int]:
    """Group index per image: images within ``max_distance`` bits (transitively) share a group."""
    n = len(hashes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    arr = np.array(hashes, dtype=np.uint64)
    table = np.array([bin(i).count("1") for i in range(256)], np.uint8)
    for i in range(n - 1):
        x = np.bitwise_xor(arr[i + 1 :], arr[i])
        dist = table[x.view(np.uint8).reshape(-1, 8)].sum(axis=1)
        for j in np.flatnonzero(dist <= max_distance) + i + 1:
            a, b = find(i), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(n)]


def split_for(key: str) -> str:
    """Deterministic 80/10/10 split of a near-duplicate group, by its first file's name."""
    return split_of(key, seed="farz-prepare-v1")


def prepare(sources: list[Path], out: Path, taxonomy: Taxonomy, ignore_unmapped: bool = False, max_distance: int = 6) -> dict[str, object]:
    """Merge ``sources`` into a YOLO dataset at ``out``; returns (and writes) the report."""
    from tqdm import tqdm

    samples = [s for src in sources for s in read_source(src)]
    if not samples:
        raise PrepareError(f"no images found in {', '.join(map(str, sources))}")
    unmapped = sorted({label for s in samples for label in s.labels if taxonomy.map_label(label, s.source) is None})
    if unmapped and not ignore_unmapped:
        raise PrepareError(
            f"labels with no taxonomy class: {', '.join(unmapped)}; add them to datasets/taxonomy.yaml or pass --ignore-unmapped"
        )
    hashes = []
    for s in tqdm(samples, desc="hashing", unit="img", leave=False):
        image = cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise PrepareError(f"{s.image}: unreadable image")
        hashes.append(dhash(image))
    groups = near_duplicate_groups(hashes, max_distance)
    group_key = {g: samples[g].image.name for g in set(groups)}
    if out.exists():
        shutil.rmtree(out)
    images: Counter[str] = Counter()
    instances: Counter[tuple[str, str]] = Counter()
    for i, (s, g) in enumerate(zip(samples, groups, strict=True)):
        split = split_for(group_key[g])
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        stem = f"{i:06d}_{s.image.stem}"
        shutil.copy(s.image, out / "images" / split / f"{stem}{s.image.suffix.lower()}")
        rows = []
        for label, (x, y, w, h) in zip(s.labels, s.boxes, strict=True):
            name = taxonomy.map_label(label, s.source)
            if name is None:
                continue
            rows.append(f"{taxonomy.index(name)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}")
            instances[(split, name)] += 1
        (out / "labels" / split / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
        images[split] += 1
    lines = [f"path: {out.resolve()}", *(f"{split}: images/{split}" for split, _ in SPLITS if images[split]), "names:"]
    lines += [f"  {i}: {n}" for i, n in enumerate(taxonomy.names)]
    (out / "data.yaml").write_text("\n".join(lines) + "\n")
    report: dict[str, object] = {
        "sources": [str(s) for s in sources],
        "taxonomy_version": taxonomy.version,
        "images": dict(images),
        "instances": {split: {n: instances[(split, n)] for n in taxonomy.names} for split, _ in SPLITS},
        "near_duplicate_groups": sum(1 for g, n in Counter(groups).items() if n > 1),
        "images_in_duplicate_groups": sum(n for n in Counter(groups).values() if n > 1),
        "unmapped_labels_ignored": unmapped,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
