"""Letterbox resizing, box IoU and class-aware non-maximum suppression (numpy, vectorised)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from vision.detections import FloatArray, IntArray

PAD_VALUE = 114  # grey, as Ultralytics pads


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the model input: ``input = frame * ratio + (pad_x, pad_y)``."""

    ratio: float
    pad_x: float
    pad_y: float

    def to_frame(self, xyxy: FloatArray, width: int, height: int) -> FloatArray:
        """Map (N, 4) boxes from model-input pixels back to frame pixels, clipped to the frame."""
        out = xyxy.astype(np.float32, copy=True)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.ratio
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.ratio
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
        return out

    def to_input(self, xyxy: FloatArray) -> FloatArray:
        """Map (N, 4) boxes from frame pixels to model-input pixels."""
        out = xyxy.astype(np.float32, copy=True) * self.ratio
        out[:, [0, 2]] += self.pad_x
        out[:, [1, 3]] += self.pad_y
        return out


def letterbox(frame: npt.NDArray[np.uint8], size: tuple[int, int]) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Resize ``frame`` (H, W, 3) to fit ``size`` = (height, width) keeping aspect, pad centred."""
    h, w = frame.shape[:2]
    th, tw = size
    ratio = min(th / h, tw / w)
    nw, nh = round(w * ratio), round(h * ratio)
    resized = frame if (nw, nh) == (w, h) else cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    left, top = (tw - nw) // 2, (th - nh) // 2
    out = cv2.copyMakeBorder(resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return np.asarray(out, dtype=np.uint8), Letterbox(ratio, float(left), float(top))


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """(N, M) intersection over union of boxes ``a`` (N, 4) and ``b`` (M, 4) in xyxy."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(xyxy: FloatArray, scores: FloatArray, class_id: IntArray, iou_threshold: float) -> IntArray:
    """Class-aware NMS: indices of kept boxes, highest score first.

    Boxes of different classes never suppress each other (they are shifted apart by class, so one
    IoU matrix serves all classes). A box is dropped when its IoU with a kept, higher-scoring box of
    its class exceeds ``iou_threshold``.
    """
    if len(scores) <= 1:
        return np.arange(len(scores), dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    offset = float(np.abs(xyxy).max()) + 1.0
    boxes = xyxy[order] + (class_id[order].astype(np.float32) * offset * 2)[:, None]
    iou = box_iou(boxes, boxes)
    np.fill_diagonal(iou, 0.0)
    over = np.triu(iou > iou_threshold)
    keep = np.ones(len(order), bool)
    for i in range(len(order)):
        if keep[i]:
            keep[over[i]] = False
    return order[keep].astype(np.int64)
