"""Training data for the material classifier: real photos as taken, and crops of items on rendered belts.

- Photos are split by item (``training.cutouts.item_split``); only the split asked for is ever read.
- Belt crops: one cut-out of the split composed onto a random belt (with neighbours that may overlap it),
  lit, blurred and compressed as a frame would be, then cut at its box with jitter by
  ``vision.classifier.crop_square``, the crop the device makes.
- Augmentation for both: flips, quarter turns, scale and shift, colour, blur, JPEG.
Every image here is BGR uint8; the classifier's normalisation lives inside its ONNX graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.cutouts import item_split
from training.synth import (
    BELT_COLOURS,
    BOARD_COLOURS,
    BeltStyle,
    Cutout,
    belt_strip,
    compose,
    finish,
    jpeg,
    load_cutouts,
    mask_box,
    transform_item,
)
from vision.classifier import crop_square

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
PHOTO_SIDE = 320  # px: photos are kept in memory with this longer side
Rng = np.random.Generator


class ClassifyDataError(ValueError):
    """A class folder is missing, empty or unreadable; the message names it."""


@dataclass(frozen=True)
class Labelled:
    """One image (BGR uint8) with its class id and where it came from."""

    image: np.ndarray
    class_id: int
    source: str


def read_image(path: Path) -> np.ndarray:
    """A BGR image, or ``ClassifyDataError`` naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ClassifyDataError(f"{path}: not a readable image")
    return image


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` with its longer side at most ``side`` px."""
    scale = side / max(image.shape[:2])
    return image if scale >= 1 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def class_folder_images(root: Path, names: tuple[str, ...], split: str | None = None) -> list[tuple[Path, int]]:
    """(path, class id) of every image of ``root/<class>/``; with ``split``, only that split's photos by item.
    Refuses a missing root, a class folder that is absent or holds no image, and folders of unknown classes."""
    if not root.is_dir():
        raise ClassifyDataError(f"{root}: no such folder (expected one folder of images per class: {', '.join(names)})")
    unknown = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in names)
    if unknown:
        raise ClassifyDataError(f"{root}: folders {unknown} are not classes of the taxonomy {list(names)}")
    out: list[tuple[Path, int]] = []
    for class_id, name in enumerate(names):
        folder = root / name
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if split is not None:
            files = [p for p in files if item_split(p.name) == split]
        if not files:
            raise ClassifyDataError(f"{folder}: no images{f' of split {split!r}' if split else ''} (each class needs some)")
        out += [(p, class_id) for p in files]
    return out


def load_photos(root: Path, names: tuple[str, ...], split: str, limit_per_class: int = 0) -> list[Labelled]:
    """The photos of one split by item, at ``PHOTO_SIDE``; ``limit_per_class`` > 0 keeps the first n per class."""
    listed = class_folder_images(root, names, split)
    if limit_per_class > 0:
        seen: dict[int, int] = {}
        listed = [(p, c) for p, c in listed if (seen.__setitem__(c, seen.get(c, 0) + 1) or seen[c]) <= limit_per_class]
    return [Labelled(shrink(read_image(p), PHOTO_SIDE), c, p.name) for p, c in listed]


def photo_crop(image: np.ndarray, size: int, rng: Rng | None) -> np.ndarray:
    """A photo as the classifier sees it: the whole photo squared (edges repeated), or with ``rng`` a random
    part of it (60-100 % of the side, shifted), as a detector's loose or tight box would give."""
    h, w = image.shape[:2]
    if rng is None:
        return crop_square(image, (0.0, 0.0, float(w), float(h)), size, margin=0.0)
    side = max(h, w) * rng.uniform(0.6, 1.0)
    cx = w / 2 + rng.uniform(-0.2, 0.2) * w
    cy = h / 2 + rng.uniform(-0.2, 0.2) * h
    return crop_square(image, (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), size, margin=0.0)


def belt_crop(item: Cutout, others: list[Cutout], size: int, rng: Rng, jitter: float = 0.15) -> np.ndarray:
    """``item`` on a random belt (a light board or chute one time in five), 32-220 px long, with up to two
    neighbours that may overlap it, finished as a camera frame, cut at its visible box moved and scaled by up
    to ``jitter`` (the detector's error). One time in six the item lies at the frame's edge, partly outside."""
    side = float(rng.uniform(32, 220))
    canvas = int(side * 2.2) + 16
    style = BeltStyle.random(rng, BOARD_COLOURS if rng.random() < 0.2 else BELT_COLOURS)
    frame = belt_strip(style, canvas, canvas)
    centre = canvas / 2
    if rng.random() < 1 / 6:  # the frame ends next to the item: crop it there, so the crop is padded as at a real edge
        keep = int(canvas / 2 + side * rng.uniform(0.0, 0.45))
        frame = frame[:, :keep] if rng.random() < 0.5 else frame[:keep]
    target = transform_item(item, side, float(rng.uniform(0, 360)), rng)
    neighbours = int(rng.choice(4, p=[0.4, 0.3, 0.2, 0.1])) if others else 0
    below = rng.random() < 0.5  # neighbours under the item (it occludes them) or over it
    alphas = []
    if below:
        alphas += [_place_neighbour(frame, others, side, centre, rng) for _ in range(neighbours)]
    frame = np.ascontiguousarray(frame)
    alpha = compose(frame, target, centre, centre)
    if not below:
        for _ in range(neighbours):
            alphas.append(_place_neighbour(frame, others, side, centre, rng))
            alpha = alpha * (1 - alphas[-1])
    blur = int(rng.choice([0, 0, 3, 5, 7]))
    image = jpeg(finish(frame, style, rng, blur, int(rng.integers(2))), style.jpeg_quality)
    mask = alpha > 0.5
    if mask.sum() < 16:
        mask = compose(np.zeros_like(frame), target, centre, centre) > 0.5
    cx, cy, bw, bh = mask_box(mask)
    h, w = mask.shape
    cx, cy, bw, bh = cx * w, cy * h, bw * w, bh * h
    cx += rng.uniform(-jitter, jitter) * bw
    cy += rng.uniform(-jitter, jitter) * bh
    bw *= rng.uniform(1 - jitter, 1 + jitter)
    bh *= rng.uniform(1 - jitter, 1 + jitter)
    return crop_square(image, (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), size)


def _place_neighbour(frame: np.ndarray, others: list[Cutout], side: float, centre: float, rng: Rng) -> np.ndarray:
    other = others[int(rng.integers(len(others)))]
    angle = rng.uniform(0, 2 * np.pi)
    distance = side * rng.uniform(0.45, 1.1)
    item = transform_item(other, side * rng.uniform(0.6, 1.2), float(rng.uniform(0, 360)), rng)
    return compose(frame, item, centre + distance * np.cos(angle), centre + distance * np.sin(angle))


def augment(image: np.ndarray, rng: Rng) -> np.ndarray:
    """Flips, a quarter turn, colour (gain, offset, saturation), sometimes blur and JPEG; same shape out."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        image = image[::-1]
    image = np.rot90(image, int(rng.integers(4)))
    out = image.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25) + rng.uniform(-10, 10, 3)
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * rng.uniform(0.7, 1.3)
    result = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        result = cv2.GaussianBlur(result, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.3:
        result = jpeg(result, int(rng.integers(30, 90)))
    return np.ascontiguousarray(result)


def belt_cutouts(folder: Path, names: tuple[str, ...], split: str) -> list[Cutout]:
    """The cut-outs of one split (``farz datasets cutouts``), for belt crops; empty if the folder is absent."""
    return load_cutouts(folder, names, split) if (folder / split).is_dir() else []


def fixed_belt_crops(cutouts: list[Cutout], size: int, per_item: int, seed: int) -> list[Labelled]:
    """Deterministic belt crops (``per_item`` per cut-out), for validation and test."""
    rng = np.random.default_rng(seed)
    return [Labelled(belt_crop(c, cutouts, size, rng), c.class_id, f"belt-{c.name}-{k}") for c in cutouts for k in range(per_item)]
