"""``farz train classify-eval``: accuracy, macro-F1, per-class figures and the confusion matrix of a classifier.

The data is either one folder of images per class (TrashNet's own layout; the whole photo is the crop) or
a YOLO dataset (each labelled box is cropped as the pipeline crops it, ``vision.crop_square``). An image
with an alpha channel (a cut-out of ``farz datasets cutouts``) is laid on a plain background and cropped
at its item's box, as the pipeline would crop it: the item without its photo's board, light and framing.
The model runs in ``vision.Classifier``, exactly as on a device. ``ms_per_crop`` is the median of batch-1 calls.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.classify_data import ClassifyDataError, class_folder_images, photo_crop, read_image, shrink
from training.evaluate import load_yolo_split
from training.synth import CUTOUT_SUFFIXES
from vision import Classifier, crop_square


@dataclass(frozen=True)
class CropSet:
    """Crops (N, S, S, 3) uint8 with true class ids (N,) in the classifier's ``names`` order, and their sources."""

    crops: np.ndarray
    truth: np.ndarray
    sources: list[str]
    cutouts: int = 0  # how many of them are cut-outs laid on a background


def is_yolo_dataset(data: Path) -> bool:
    """A data.yaml, or a folder that holds one."""
    return data.suffix in {".yaml", ".yml"} or (data / "data.yaml").is_file()


BACKGROUNDS: dict[str, tuple[int, int, int]] = {  # BGR under a cut-out
    "grey": (120, 120, 120),
    "white": (235, 235, 235),
    "dark": (45, 45, 45),
    "green": (70, 110, 60),
    "blue": (140, 90, 40),
}


def cutout_crop(rgba: np.ndarray, imgsz: int, background: tuple[int, int, int]) -> np.ndarray:
    """A cut-out (H, W, 4) BGRA laid on ``background`` (BGR) with room around it, cropped square at its
    item's box (alpha above half) with ``vision.crop_square``: (imgsz, imgsz, 3) uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255
    ys, xs = np.nonzero(alpha[..., 0] > 0.5)
    if len(xs) == 0:
        raise ClassifyDataError("a cut-out with no opaque pixel")
    h, w = alpha.shape[:2]
    pad = max(h, w) // 2
    canvas = np.empty((h + 2 * pad, w + 2 * pad, 3), np.float32)
    canvas[:] = background
    inner = canvas[pad : pad + h, pad : pad + w]
    canvas[pad : pad + h, pad : pad + w] = rgba[..., :3] * alpha + inner * (1 - alpha)
    box = (pad + float(xs.min()), pad + float(ys.min()), pad + float(xs.max()) + 1, pad + float(ys.max()) + 1)
    return crop_square(np.clip(canvas, 0, 255).astype(np.uint8), box, imgsz)


def folder_crops(
    data: Path, names: tuple[str, ...], imgsz: int, split: str | None = None, background: tuple[int, int, int] = BACKGROUNDS["grey"]
) -> CropSet:
    """Every image of ``data/<class>/`` (only ``split``'s photos by item when given): a photo as a whole-photo
    crop, a cut-out (an image with alpha) on ``background`` (BGR) at its item's box."""
    listed = class_folder_images(data, names, split)
    crops, cutouts = [], 0
    for path, _ in listed:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.suffix.lower() in CUTOUT_SUFFIXES else None
        if image is not None and image.ndim == 3 and image.shape[2] == 4:
            try:
                crops.append(cutout_crop(image, imgsz, background))
                cutouts += 1
            except ClassifyDataError as error:
                raise ClassifyDataError(f"{path}: {error}") from error
        else:
            crops.append(photo_crop(shrink(read_image(path), 320), imgsz, None))
    return CropSet(np.stack(crops), np.asarray([c for _, c in listed], np.int64), [str(p) for p, _ in listed], cutouts)


def yolo_crops(data: Path, names: tuple[str, ...], imgsz: int, split: str = "val") -> CropSet:
    """Every labelled box of a YOLO split, cropped as the pipeline crops it; classes matched by name."""
    data_yaml = data if data.suffix in {".yaml", ".yml"} else data / "data.yaml"
    ys = load_yolo_split(data_yaml, split)
    unknown = sorted(set(ys.names) - set(names))
    if unknown:
        raise ClassifyDataError(f"{data_yaml}: classes {unknown} are not the classifier's {list(names)}")
    crops, truth, sources = [], [], []
    for image_path in ys.images:
        label_path = ys.label_path(image_path)
        frame = read_image(image_path)
        h, w = frame.shape[:2]
        if not label_path.is_file():
            continue
        for line in label_path.read_text().splitlines():
            v = line.split()
            if len(v) < 5:
                continue
            cx, cy, bw, bh = (float(x) for x in v[1:5])
            box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
            crops.append(crop_square(frame, box, imgsz))
            truth.append(names.index(ys.names[int(v[0])]))
            sources.append(f"{image_path}#{len(sources)}")
    if not crops:
        raise ClassifyDataError(f"{data_yaml}: split {split!r} has no labelled boxes")
    return CropSet(np.stack(crops), np.asarray(truth, np.int64), sources)


def scores(truth: np.ndarray, predicted: np.ndarray, names: tuple[str, ...]) -> dict[str, object]:
    """Accuracy, macro-F1 (over classes with support), per-class precision/recall/support, confusion (rows true)."""
    n = len(names)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    per_class: dict[str, dict[str, float | int]] = {}
    f1s = []
    for k, name in enumerate(names):
        tp = int(confusion[k, k])
        support = int(confusion[k].sum())
        called = int(confusion[:, k].sum())
        precision = tp / called if called else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if support:
            f1s.append(f1)
        per_class[name] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": support}
    return {
        "accuracy": round(float((truth == predicted).mean()) if len(truth) else 0.0, 4),
        "macro_f1": round(float(np.mean(f1s)) if f1s else 0.0, 4),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def classify_eval(
    model: Path, data: Path, split: str | None = None, threads: int = 1, flips: bool = False, background: str = "grey"
) -> dict[str, object]:
    """Evaluate ``model`` on ``data``; ``split`` picks a split by item of a class-folder set (or a YOLO split).
    ``flips`` averages the probabilities of the crop and its mirror image (test-time augmentation);
    ``background`` (a ``BACKGROUNDS`` name) lies under cut-outs."""
    if background not in BACKGROUNDS:
        raise ClassifyDataError(f"background {background!r} is not one of {', '.join(BACKGROUNDS)}")
    classifier = Classifier(model, threads=threads)
    names, size = classifier.names, classifier.imgsz
    if is_yolo_dataset(data):
        crop_set = yolo_crops(data, names, size, split or "val")
    else:
        crop_set = folder_crops(data, names, size, split, BACKGROUNDS[background])
    probabilities = []
    times = []
    for crop in crop_set.crops:
        t0 = time.perf_counter()
        p = classifier.predict(crop[None])[0]
        times.append((time.perf_counter() - t0) * 1000)
        if flips:
            p = (p + classifier.predict(np.ascontiguousarray(crop[None, :, ::-1]))[0]) / 2
        probabilities.append(p)
    predicted = np.asarray(probabilities).argmax(axis=1)
    result: dict[str, object] = {"model": str(model), "data": str(data), "names": list(names)}
    result.update(scores(crop_set.truth, predicted, names))
    result.update({"images": len(crop_set.crops), "ms_per_crop": round(statistics.median(times), 3), "imgsz": size, "threads": threads})
    if crop_set.cutouts:
        result.update({"cutouts": crop_set.cutouts, "background": background})
    return result


def plot_confusion(result: dict[str, object], out: Path, cell: int = 72) -> Path:
    """The confusion matrix (rows true, columns predicted) as a PNG: counts, row-normalised shading."""
    names = list(result["names"])  # type: ignore[call-overload]
    confusion = np.asarray(result["confusion"], np.int64)
    n = len(names)
    left, top = 110, 40
    image = np.full((top + n * cell + 60, left + n * cell + 20, 3), 255, np.uint8)
    rows = confusion.sum(axis=1, keepdims=True).clip(min=1)
    share = confusion / rows
    for i in range(n):
        for j in range(n):
            shade = int(255 - 200 * share[i, j])
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(image, (x0, y0), (x0 + cell, y0 + cell), (255, shade, shade) if i != j else (shade, 255, shade), -1)
            cv2.rectangle(image, (x0, y0), (x0 + cell, y0 + cell), (180, 180, 180), 1)
            cv2.putText(
                image, str(confusion[i, j]), (x0 + 8, y0 + cell // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA
            )
        cv2.putText(image, names[i][:11], (6, top + i * cell + cell // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(
            image, names[i][:9], (left + i * cell + 4, top + n * cell + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
        )
    title = f"rows true, columns predicted; accuracy {result['accuracy']}, macro-F1 {result['macro_f1']}"
    cv2.putText(image, title, (6, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), image)
    return out
