"""``OnnxDetector``: an Ultralytics-exported YOLO detect model (FP32 or INT8 QDQ) on ONNX Runtime."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from vision.detections import Detections
from vision.errors import ModelError
from vision.geometry import Letterbox, cxcywh_to_xyxy, letterbox, nms, to_blob
from vision.hashing import file_sha256

HEAD_YOLO11 = "yolo11"  # (1, 4 + nc, anchors): cx, cy, w, h then per-class scores; needs NMS
HEAD_END2END = "end2end"  # (1, N, 6): x1, y1, x2, y2, score, class; no NMS

Blob = npt.NDArray[np.float32] | npt.NDArray[np.uint8]  # a model input: float (1, 3, h, w) or uint8 (1, h, w, 3)


ITEM_CLASSES = ("item",)  # the class list of an item detector: it finds items, a material classifier names them


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself (from its ONNX ``metadata_props``)."""

    path: str
    names: tuple[str, ...]
    imgsz: tuple[int, int]
    head: str
    sha256: str
    metadata: dict[str, str] = field(repr=False)
    dynamic: bool = False  # input height and width are free: frames are padded only to a multiple of ``stride``
    stride: int = 32
    uint8_input: bool = False  # input is the letterboxed BGR frame itself, (1, h, w, 3) uint8; else (1, 3, h, w) float RGB 0..1

    @property
    def model_id(self) -> str:
        """``name@sha256:<first 12 hex>``, the id that every CountEvent carries."""
        name = self.metadata.get("farz_name") or Path(self.path).stem
        return f"{name}@sha256:{self.sha256[:12]}"


@dataclass(frozen=True)
class DetectorSettings:
    """Inference settings: thresholds in 0..1, ONNX Runtime threads (0 = runtime default) and providers.

    ``cross_class_iou``: boxes of *different* classes overlapping more than this are one item the model
    was unsure about; only the highest-scoring one is kept (None = keep all), so an item is never tracked
    and counted twice under two classes.
    """

    confidence: float = 0.25
    iou: float = 0.5
    cross_class_iou: float | None = 0.7
    agnostic: bool = False  # one NMS over every class (an item detector for the two-stage pipeline); class_id stays the argmax
    item_score: str = "max"  # agnostic only: an anchor's item score from its class scores, "max" or "any" = 1 - prod(1 - s_c)
    contained: float | None = None  # also drop a box mostly inside another (intersection / smaller area above this): a part of an item
    max_detections: int = 300
    threads: int = 0
    providers: tuple[str, ...] = ("CPUExecutionProvider",)

    def __post_init__(self) -> None:
        if self.item_score not in ("max", "any"):
            raise ValueError(f"item_score must be 'max' or 'any', got {self.item_score!r}")


def _parse_literal(value: str) -> object:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _parse_names(path: str, raw: str | None) -> tuple[str, ...]:
    if raw is None:
        raise ModelError(path, "metadata has no 'names'", "export the model with Ultralytics or `farz train export`")
    parsed = _parse_literal(raw)
    if isinstance(parsed, dict):
        keys = sorted(parsed)
        if keys != list(range(len(keys))):
            raise ModelError(path, f"metadata 'names' has non-contiguous class ids {keys[:10]}")
        return tuple(str(parsed[k]) for k in keys)
    if isinstance(parsed, (list, tuple)) and parsed:
        return tuple(str(n) for n in parsed)
    raise ModelError(path, f"metadata 'names' is not a class list: {raw[:80]!r}")


def _parse_imgsz(path: str, raw: str | None, input_shape: list[object]) -> tuple[int, int]:
    parsed = _parse_literal(raw) if raw is not None else None
    if isinstance(parsed, int):
        return parsed, parsed
    if isinstance(parsed, (list, tuple)) and len(parsed) == 2 and all(isinstance(v, int) for v in parsed):
        return int(parsed[0]), int(parsed[1])
    h, w = input_shape[2], input_shape[3]
    if isinstance(h, int) and isinstance(w, int):
        return h, w
    raise ModelError(path, "input size unknown: no 'imgsz' metadata and a dynamic input shape", "export with a fixed imgsz")


class OnnxDetector:
    """Detect objects in BGR frames with a YOLO ONNX model; returns ``Detections`` in frame pixels.

    Reads class names and input size from the model's metadata; letterboxes; runs ONNX Runtime;
    decodes either the YOLO11 head ``(1, 4+nc, A)`` (with class-aware NMS) or the end-to-end head
    ``(1, N, 6)``. Raises ``ModelError`` for any file that is not such a model.
    """

    def __init__(self, model_path: str | Path, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(str(path), "file not found", "pass --model with the path of an .onnx file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.settings.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(self.settings.providers))
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(str(path), f"not a loadable ONNX model: {first}") from exc
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(str(path), f"expected one image input (1, 3, H, W) or (1, H, W, 3), got {[i.shape for i in inputs]}")
        self.input_name = inputs[0].name
        uint8_input = inputs[0].type == "tensor(uint8)"
        shape = list(inputs[0].shape)
        if (uint8_input and shape[3] != 3) or (not uint8_input and (inputs[0].type != "tensor(float)" or shape[1] != 3)):
            raise ModelError(str(path), f"input is {inputs[0].type} {shape}: expected float (1, 3, H, W) or uint8 (1, H, W, 3)")
        names = _parse_names(str(path), meta.get("names"))
        nchw = [shape[0], shape[3], shape[1], shape[2]] if uint8_input else shape
        imgsz = _parse_imgsz(str(path), meta.get("imgsz"), nchw)
        head = self._head_kind(str(path), self.session.get_outputs()[0].shape, len(names))
        if meta.get("task", "detect") != "detect":
            raise ModelError(str(path), f"task is {meta['task']!r}, farz needs a 'detect' model")
        dynamic = not all(isinstance(d, int) for d in nchw[2:])
        stride = _parse_literal(meta.get("stride", "32"))
        if not isinstance(stride, int) or stride <= 0:
            raise ModelError(str(path), f"metadata 'stride' is {meta.get('stride')!r}, expected a positive integer")
        self.info = ModelInfo(str(path), names, imgsz, head, file_sha256(path), meta, dynamic, stride, uint8_input)

    @staticmethod
    def _head_kind(path: str, shape: list[object], nc: int) -> str:
        if len(shape) != 3:
            raise ModelError(path, f"output has shape {shape}, expected (1, 4+nc, A) or (1, N, 6)")
        if shape[1] == 4 + nc and shape[2] != 6:
            return HEAD_YOLO11
        if shape[2] == 6:
            return HEAD_END2END
        if shape[1] == 4 + nc:
            return HEAD_YOLO11
        raise ModelError(
            path, f"output shape {shape} does not match {nc} classes", "is this a detect model with the classes in its 'names'?"
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Class names in model order."""
        return self.info.names

    @property
    def input_size(self) -> int:
        """px, the long side of the model's own input."""
        return max(self.info.imgsz)

    def input_target(self, size: int | None = None) -> tuple[tuple[int, int], int]:
        """What a frame is letterboxed to: (height, width) px — the model's size, or for a model with a free input
        size ``size`` px on the long side — and the stride its padded sides are multiples of (0: padded to it all)."""
        target = (size, size) if size is not None and self.info.dynamic else self.info.imgsz
        return target, self.info.stride if self.info.dynamic else 0

    def preprocess(self, frame: npt.NDArray[np.uint8], size: int | None = None) -> tuple[Blob, Letterbox]:
        """BGR frame (H, W, 3) → the model input, letterboxed to the model size (or, for a model with a free
        input size, to ``size`` px on the long side), and the letterbox used."""
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected a BGR frame of shape (H, W, 3), got {frame.shape}")
        boxed, box = letterbox(frame, *self.input_target(size))
        return self.to_input(boxed), box

    def to_input(self, boxed: npt.NDArray[np.uint8]) -> Blob:
        """A letterboxed BGR image (h, w, 3) → what the model reads: (1, h, w, 3) uint8 as it is (a
        uint8-input model), else (1, 3, h, w) float32 RGB in 0..1."""
        return boxed[None] if self.info.uint8_input else to_blob(boxed)

    def infer(self, blob: Blob) -> npt.NDArray[np.float32]:
        """Raw model output for a preprocessed blob."""
        return np.asarray(self.session.run(None, {self.input_name: blob})[0], dtype=np.float32)

    def postprocess(self, raw: npt.NDArray[np.float32], box: Letterbox, width: int, height: int) -> Detections:
        """Decode the raw output into thresholded, NMS-filtered detections in frame pixels, best first."""
        s = self.settings
        if self.info.head == HEAD_END2END:
            pred = raw[0]
            pred = pred[pred[:, 4] >= s.confidence]
            xyxy, scores, class_id = pred[:, :4], pred[:, 4], pred[:, 5].astype(np.int64)
            no_same_class_nms = 2.0  # the end-to-end head has already suppressed duplicates of one class
            groups = np.zeros_like(class_id) if s.agnostic else class_id
            kept = nms(xyxy, scores, groups, s.iou if s.agnostic else no_same_class_nms, s.cross_class_iou, s.contained)[: s.max_detections]
        else:
            head = raw[0]  # (4 + nc, A)
            if s.agnostic and s.item_score == "any":  # P(some class) for independent per-class sigmoids
                best = 1.0 - np.prod(1.0 - np.clip(head[4:], 0.0, 1.0), axis=0)
            else:
                best = head[4:].max(axis=0)
            keep = np.flatnonzero(best >= s.confidence)  # most anchors see nothing: drop them first
            if len(keep) > 3000:
                keep = keep[np.argpartition(-best[keep], 3000)[:3000]]
            scores = best[keep]
            class_id = head[4:, keep].argmax(axis=0)
            xyxy = cxcywh_to_xyxy(head[:4, keep].T)
            groups = np.zeros_like(class_id) if s.agnostic else class_id
            kept = nms(xyxy, scores, groups, s.iou, s.cross_class_iou, s.contained)[: s.max_detections]
        return Detections(
            box.to_frame(xyxy[kept], width, height),
            scores[kept].astype(np.float32, copy=False),
            class_id[kept].astype(np.int64, copy=False),
        )

    def __call__(self, frame: npt.NDArray[np.uint8]) -> Detections:
        """Detect objects in one BGR frame."""
        blob, box = self.preprocess(frame)
        return self.postprocess(self.infer(blob), box, frame.shape[1], frame.shape[0])
