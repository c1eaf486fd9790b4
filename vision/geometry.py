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
        out = np.subtract(xyxy, (self.pad_x, self.pad_y, self.pad_x, self.pad_y), dtype=np.float32)
        out /= np.float32(self.ratio)
        np.maximum(out, 0, out=out)
        return np.minimum(out, np.array((width, height, width, height), np.float32), out=out)  # np.clip: same, 3x slower

    def to_input(self, xyxy: FloatArray) -> FloatArray:
        """Map (N, 4) boxes from frame pixels to model-input pixels."""
        out = xyxy.astype(np.float32, copy=True) * self.ratio
        out[:, [0, 2]] += self.pad_x
        out[:, [1, 3]] += self.pad_y
        return out


def letterbox(frame: npt.NDArray[np.uint8], size: tuple[int, int], stride: int = 0) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Resize ``frame`` (H, W, 3) to fit ``size`` = (height, width) keeping aspect, pad centred.

    With ``stride`` > 0 (a model with a dynamic input) the output is only padded up to the next multiple
    of ``stride`` on each side instead of to ``size``: a 640×360 frame into 320 becomes 320×192, not 320×320.
    """
    h, w = frame.shape[:2]
    (nw, nh), (tw, th), box = letterbox_layout(w, h, size, stride)
    resized = frame if (nw, nh) == (w, h) else np.asarray(cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR), np.uint8)
    return pad_letterboxed(resized, (tw, th), box), box


def letterbox_layout(width: int, height: int, size: tuple[int, int], stride: int = 0) -> tuple[tuple[int, int], tuple[int, int], Letterbox]:
    """Where ``letterbox`` puts a ``width`` x ``height`` picture: its resized (width, height), the padded input's
    (width, height) px, and the letterbox (ratio and padding)."""
    th, tw = size
    ratio = min(th / height, tw / width)
    nw, nh = round(width * ratio), round(height * ratio)
    if stride > 0:
        th, tw = -(-nh // stride) * stride, -(-nw // stride) * stride
    return (nw, nh), (tw, th), Letterbox(ratio, float((tw - nw) // 2), float((th - nh) // 2))


def pad_letterboxed(resized: npt.NDArray[np.uint8], padded: tuple[int, int], box: Letterbox) -> npt.NDArray[np.uint8]:
    """A resized picture (h, w, 3) centred on the grey of the padding, ``padded`` = (width, height) px, as ``box`` says."""
    nh, nw = resized.shape[:2]
    tw, th = padded
    left, top = int(box.pad_x), int(box.pad_y)
    out = cv2.copyMakeBorder(resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return np.asarray(out, dtype=np.uint8)


def to_blob(image: npt.NDArray[np.uint8]) -> FloatArray:
    """A letterboxed BGR image (h, w, 3) → the model input (1, 3, h, w), float32 RGB in 0..1."""
    return np.asarray(cv2.dnn.blobFromImage(image, scalefactor=1 / 255.0, swapRB=True), np.float32)


# Box formats as linear maps (exact in float32, so they keep the input's precision): ``boxes @ MAP``.
_CXCYWH_TO_XYXY = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]], np.float32)
_XYXY_TO_CXCYWH = np.array([[0.5, 0, -1, 0], [0, 0.5, 0, -1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]], np.float32)


def cxcywh_to_xyxy(boxes: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """(N, 4) centre, width, height → (N, 4) corners, in the input's float type."""
    return np.asarray(boxes @ _CXCYWH_TO_XYXY)


def xyxy_to_cxcywh(boxes: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """(N, 4) corners → (N, 4) centre, width, height, in the input's float type."""
    return np.asarray(boxes @ _XYXY_TO_CXCYWH)


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """(N, M) intersection over union of boxes ``a`` (N, 4) and ``b`` (M, 4) in xyxy."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    inter = np.minimum(ax2, bx2)  # (N, M), in place from here: fewer temporaries, same values
    inter -= np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    np.maximum(inter, 0, out=inter)
    np.maximum(ih, 0, out=ih)
    inter *= ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)
    union -= inter
    # union >= inter > 0 wherever boxes overlap, and inter = 0 elsewhere: no division by zero, no 0/0.
    np.maximum(union, np.float32(1e-9), out=union)
    inter /= union
    return np.asarray(inter, np.float32)


def box_overlap_of_first(a: FloatArray, b: FloatArray) -> FloatArray:
    """(N, M) intersection of boxes ``a`` (N, 4) and ``b`` (M, 4) in xyxy over the area of the box of ``a``."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    return np.asarray(w * h / np.maximum(area[:, None], 1e-6), np.float32)


def box_overlap_of_smaller(a: FloatArray) -> FloatArray:
    """(N, N) intersection of boxes ``a`` (N, 4) xyxy over the smaller box's area of each pair."""
    of_first = box_overlap_of_first(a, a)
    return np.asarray(np.maximum(of_first, of_first.T), np.float32)


def nms(
    xyxy: FloatArray,
    scores: FloatArray,
    class_id: IntArray,
    iou_threshold: float,
    cross_class_iou: float | None = None,
    contained: float | None = None,
) -> IntArray:
    """Class-aware NMS: indices of kept boxes, highest score first.

    Greedy in score order: a box is dropped when its IoU with a kept, higher-scoring box of its class
    exceeds ``iou_threshold`` or, with ``cross_class_iou`` set, its IoU with a kept box of *any* class
    exceeds ``cross_class_iou`` (one item the model was unsure about is kept once, under its best class);
    with ``contained`` set, also when one of the two boxes lies mostly inside the other (intersection over
    the smaller box's area above ``contained``): a part of an item boxed beside the whole item.
    """
    n = len(scores)
    if n <= 1:
        return np.arange(n, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = xyxy[order]
    iou = box_iou(boxes, boxes)
    classes = class_id[order]
    over = (iou > iou_threshold) & (classes[:, None] == classes[None, :])
    if cross_class_iou is not None:
        over |= iou > cross_class_iou
    if contained is not None:
        over |= box_overlap_of_smaller(boxes) > contained
    np.fill_diagonal(over, False)
    suppressors = np.flatnonzero(over.any(axis=1))
    if len(suppressors) == 0:
        return order.astype(np.int64)
    keep = np.ones(n, bool)
    for i in suppressors.tolist():
        # ``over`` is symmetric: a kept box i never suppresses a higher-scoring kept box j, because j,
        # visited first, would have suppressed i.
        if keep[i]:
            keep[over[i]] = False
    return order[keep].astype(np.int64)
