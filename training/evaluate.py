"""``farz train eval`` / ``compare``: COCO mAP of an ONNX model through the deployed path.

The model runs in ``vision.OnnxDetector`` (letterbox, ONNX Runtime, NMS) exactly as on a device;
mAP is computed by pycocotools (COCO's own definition: 101-point interpolation, IoU 0.50:0.95).
Classes are matched by name between the dataset's ``names`` and the model's.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from device.truth import Counts
from vision import DetectorSettings, OnnxDetector, box_iou

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
OPERATING_CONFIDENCE = 0.25  # the detection threshold `farz count` and the device run at (CountSettings.confidence)


@dataclass(frozen=True)
class YoloSplit:
    """Images of one split of a YOLO dataset with their label files and the dataset's class names."""

    images: list[Path]
    names: tuple[str, ...]

    @staticmethod
    def label_path(image: Path) -> Path:
        parts = list(image.parts)
        idx = len(parts) - 1 - parts[::-1].index("images")
        return Path(*parts[:idx], "labels", *parts[idx + 1 :]).with_suffix(".txt")


def load_yolo_split(data: Path, split: str = "val") -> YoloSplit:
    """A YOLO dataset given as its folder or data.yaml; uses ``split`` (falls back to test, then val)."""
    yaml_path = data if data.suffix in {".yaml", ".yml"} else data / "data.yaml"
    if not yaml_path.is_file():
        raise FileNotFoundError(f"{data}: no data.yaml (expected a YOLO dataset folder or its data.yaml)")
    spec = yaml.safe_load(yaml_path.read_text()) or {}
    raw_names = spec.get("names")
    names = tuple(raw_names[k] for k in sorted(raw_names)) if isinstance(raw_names, dict) else tuple(raw_names or ())
    if not names:
        raise ValueError(f"{yaml_path}: no class `names`")
    root = Path(spec.get("path") or yaml_path.parent)
    if not root.is_absolute():
        root = yaml_path.parent / root
    for key in (split, "test", "val"):
        if spec.get(key):
            folder = root / str(spec[key])
            images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if images:
                return YoloSplit(images, tuple(str(n) for n in names))
    raise FileNotFoundError(f"{yaml_path}: no images for split {split!r}")


def read_labels(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(class ids (N,), boxes (N, 4) xyxy px) of one YOLO label file; empty when the file is missing."""
    if not path.is_file():
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    arr = np.array([[float(v) for v in r[:5]] for r in rows], np.float32)
    cx, cy, w, h = arr[:, 1] * width, arr[:, 2] * height, arr[:, 3] * width, arr[:, 4] * height
    return arr[:, 0].astype(np.int64), np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def coco_map(
    gt: list[tuple[int, int, np.ndarray, np.ndarray]],
    preds: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
    sizes: dict[int, tuple[int, int]],
    num_classes: int,
) -> dict[str, object]:
    """COCO mAP with pycocotools. ``gt``: (image id, class, boxes xyxy (N, 4)...) per image as
    (image_id, _, class ids, boxes); ``preds``: (image_id, class ids, boxes, scores)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i, "width": w, "height": h} for i, (w, h) in sizes.items()]
    annotations = []
    for image_id, _, classes, boxes in gt:
        for c, b in zip(classes.tolist(), boxes.tolist(), strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(c),
                    "bbox": [b[0], b[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    coco_gt = COCO()
    coco_gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": k} for k in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
    results = [
        {"image_id": image_id, "category_id": int(c), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": float(s)}
        for image_id, classes, boxes, scores in preds
        for c, b, s in zip(classes.tolist(), boxes.tolist(), scores.tolist(), strict=True)
    ]
    if not results or not annotations:
        return {"map50": 0.0, "map50_95": 0.0, "per_class_ap50": [0.0] * num_classes}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.maxDets = [1, 10, 300]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # (iou thresholds, recall points, classes, areas, max dets)
    per_class = []
    for k in range(num_classes):
        p = precision[0, :, k, 0, -1]
        per_class.append(float(p[p > -1].mean()) if (p > -1).any() else float("nan"))
    p50 = precision[0, :, :, 0, -1]
    p_all = precision[:, :, :, 0, -1]
    return {
        "map50": float(p50[p50 > -1].mean()) if (p50 > -1).any() else 0.0,
        "map50_95": float(p_all[p_all > -1].mean()) if (p_all > -1).any() else 0.0,
        "per_class_ap50": per_class,
    }


def evaluate(
    model: Path,
    data: Path,
    split: str = "val",
    threads: int = 0,
    max_images: int = 0,
    progress: bool = True,
    classifier: Path | None = None,
    classify_top: int = 100,
    item_score: str = "any",
) -> dict[str, object]:
    """mAP50, mAP50-95, AP50 per class, class-agnostic AP50, images and median ms/frame (batch 1) of ``model``
    on ``data``. With ``classifier``, the two-stage path as ``farz count`` runs it: the detector finds items
    whatever their class (one NMS over all), the classifier names each box's material from its crop (the
    ``classify_top`` best boxes of an image, in one batch), and a box scores detector confidence × material
    probability."""
    from tqdm import tqdm

    from vision import Classifier

    dataset = load_yolo_split(data, split)
    two_stage = classifier is not None
    settings = DetectorSettings(
        confidence=0.001, iou=0.6, threads=threads, agnostic=two_stage, item_score=item_score if two_stage else "max"
    )
    detector = OnnxDetector(model, settings)
    material = Classifier(classifier, threads=threads) if classifier is not None else None
    names = material.names if material is not None else detector.names
    to_model = {i: names.index(n) for i, n in enumerate(dataset.names) if n in names}
    images = dataset.images[:max_images] if max_images else dataset.images
    gt, preds, agnostic, sizes, times, crop_times = [], [], [], {}, [], []
    for image_id, path in enumerate(tqdm(images, desc=f"eval {model.name}", unit="img", disable=not progress, leave=False)):
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise ValueError(f"{path}: unreadable image")
        h, w = frame.shape[:2]
        sizes[image_id] = (w, h)
        classes, boxes = read_labels(YoloSplit.label_path(path), w, h)
        keep = np.array([int(c) in to_model for c in classes], bool)
        classes = np.array([to_model[int(c)] for c in classes[keep]], np.int64)
        gt.append((image_id, 0, classes, boxes[keep]))
        blob, box = detector.preprocess(frame)
        t0 = time.perf_counter()
        raw = detector.infer(blob)
        times.append((time.perf_counter() - t0) * 1000)
        det = detector.postprocess(raw, box, w, h)
        agnostic.append((image_id, np.zeros(len(det), np.int64), det.xyxy, det.confidence))
        if material is not None:
            det = det[np.arange(min(len(det), classify_top))]
            t0 = time.perf_counter()
            probabilities = material.classify_boxes(frame, det.xyxy)
            if len(det):
                crop_times.append((time.perf_counter() - t0) * 1000 / len(det))
            material_id = probabilities.argmax(axis=1) if len(det) else np.zeros(0, np.int64)
            score = det.confidence * (probabilities.max(axis=1) if len(det) else np.zeros(0, np.float32))
            preds.append((image_id, material_id.astype(np.int64), det.xyxy, score.astype(np.float32)))
        else:
            preds.append((image_id, det.class_id, det.xyxy, det.confidence))
    metrics = coco_map(gt, preds, sizes, len(names))
    per_class_list = metrics.pop("per_class_ap50")
    assert isinstance(per_class_list, list)
    gt_agnostic = [(i, 0, np.zeros(len(c), np.int64), b) for i, _, c, b in gt]
    agnostic_ap50 = float(coco_map(gt_agnostic, agnostic, sizes, 1)["map50"])  # type: ignore[arg-type]
    recall, boxes_per_item = operating_point(gt_agnostic, agnostic)
    result: dict[str, object] = {
        "model": str(model),
        "classifier": None if classifier is None else str(classifier),
        "data": str(data),
        "map50": round(float(metrics["map50"]), 4),  # type: ignore[arg-type]
        "map50_95": round(float(metrics["map50_95"]), 4),  # type: ignore[arg-type]
        "agnostic_ap50": round(agnostic_ap50, 4),
        "item_recall": round(recall, 4),  # at the operating confidence, IoU 0.5, whatever the class
        "boxes_per_item": round(boxes_per_item, 4),
        "per_class": {n: (None if np.isnan(v) else round(v, 4)) for n, v in zip(names, per_class_list, strict=True)},
        "images": len(images),
        "ms_per_frame": round(statistics.median(times), 3) if times else 0.0,
        "threads": threads,
    }
    if material is not None:
        result["ms_per_crop"] = round(statistics.median(crop_times), 3) if crop_times else 0.0
    return result


def operating_point(
    truth: list[tuple[int, int, np.ndarray, np.ndarray]],
    found: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
    confidence: float = OPERATING_CONFIDENCE,
    iou: float = 0.5,
) -> tuple[float, float]:
    """Class-agnostic recall (true boxes matched at ``iou``, greedily by confidence) and boxes per true item,
    counting only boxes at ``confidence`` or above: what the tracker is given at the operating point."""
    items = matched = boxes = 0
    for (_, _, _, true_boxes), (_, _, xyxy, scores) in zip(truth, found, strict=True):
        kept = xyxy[scores >= confidence][np.argsort(-scores[scores >= confidence], kind="stable")]
        items += len(true_boxes)
        boxes += len(kept)
        if len(kept) and len(true_boxes):
            overlap = box_iou(kept, true_boxes)
            free = np.ones(len(true_boxes), bool)
            for row in overlap:
                best = int(np.argmax(np.where(free, row, -1.0)))
                if free[best] and row[best] >= iou:
                    free[best] = False
                    matched += 1
    return (matched / items, boxes / items) if items else (0.0, 0.0)


def count_error(counts: Counts, truth: Counts) -> float:
    """Mean relative absolute error of per-class totals (both directions summed)."""

    def totals(c: Counts) -> dict[str, int]:
        out: dict[str, int] = {}
        for per_class in c.values():
            for name, n in per_class.items():
                out[name] = out.get(name, 0) + n
        return out

    got, want = totals(counts), totals(truth)
    classes = sorted(set(got) | set(want))
    if not classes:
        return 0.0
    return float(np.mean([abs(got.get(c, 0) - want.get(c, 0)) / max(want.get(c, 0), 1) for c in classes]))
