"""``Classifier``: a material classifier (ONNX, ``task: classify``) on square crops of detected items.

The model reads uint8 BGR crops ``(N, S, S, 3)`` and returns class probabilities ``(N, C)``; its
normalisation lives inside the graph, so the device hands it pixels as they are. ``crop_square`` cuts
the crop the same way in training and on the device.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from vision.errors import ModelError
from vision.hashing import file_sha256

CROP_MARGIN = 0.1  # each side of the box grows by this fraction of its longer side before cropping


@dataclass(frozen=True)
class ClassifierInfo:
    """What a classifier file says about itself (``metadata_props``)."""

    path: str
    names: tuple[str, ...]
    imgsz: int
    sha256: str
    metadata: dict[str, str] = field(repr=False)

    @property
    def model_id(self) -> str:
        """``name@sha256:<first 12 hex>``, as every CountEvent names its models."""
        name = self.metadata.get("farz_name") or Path(self.path).stem
        return f"{name}@sha256:{self.sha256[:12]}"


def crop_square(
    frame: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32] | tuple[float, ...], size: int, margin: float = CROP_MARGIN
) -> npt.NDArray[np.uint8]:
    """The square around box ``xyxy`` (px) of a BGR frame (H, W, 3), its side the box's longer side plus
    ``margin`` of it on each side, resized to (size, size, 3); parts outside the frame repeat its edge."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    side = max(x2 - x1, y2 - y1, 2.0) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = frame.shape[:2]
    left, top = round(cx - side / 2), round(cy - side / 2)
    right, bottom = left + max(round(side), 2), top + max(round(side), 2)
    pad = (max(0, -top), max(0, bottom - h), max(0, -left), max(0, right - w))
    region = frame[max(0, top) : min(h, bottom), max(0, left) : min(w, right)]
    if region.size == 0:  # a box wholly outside the frame: the nearest pixel
        y, x = min(max(0, top), h - 1), min(max(0, left), w - 1)
        region, pad = frame[y : y + 1, x : x + 1], (0, 0, 0, 0)
    if any(pad):
        region = np.asarray(cv2.copyMakeBorder(region, *pad, cv2.BORDER_REPLICATE), np.uint8)
    interpolation = cv2.INTER_AREA if region.shape[0] > size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(region, (size, size), interpolation=interpolation), np.uint8)


def _names(path: str, raw: str | None) -> tuple[str, ...]:
    try:
        parsed = ast.literal_eval(raw) if raw is not None else None
    except (ValueError, SyntaxError):
        parsed = None
    if isinstance(parsed, dict) and sorted(parsed) == list(range(len(parsed))):
        return tuple(str(parsed[k]) for k in sorted(parsed))
    if isinstance(parsed, (list, tuple)) and parsed:
        return tuple(str(n) for n in parsed)
    raise ModelError(
        path, f"metadata 'names' is missing or not a class list: {str(raw)[:80]!r}", "export it with `farz train classify-export`"
    )


class Classifier:
    """Classify crops with an ONNX classifier: ``predict(crops (N, S, S, 3) uint8 BGR) → (N, C) float32``.

    Raises ``ModelError`` for a file that is not a farz classifier (a detector, a corrupt file, a model
    whose class list is not the expected one).
    """

    def __init__(self, model_path: str | Path, threads: int = 0, expected_names: tuple[str, ...] | None = None) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(
                str(path), "file not found", "give the path of a classifier .onnx file (`--classifier none` counts without one)"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # It runs a few frames in ten, between the detector's runs: its idle threads would spin on the cores the
        # detector runs on next (`farz bench edge`: two-stage / detector-only 0.85x spinning, 0.89x not).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(str(path), f"not a loadable ONNX model: {first}") from exc
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        task = meta.get("task", "")
        if task != "classify":
            hint = "this is a detector: pass it as --model" if task == "detect" else "export it with `farz train classify-export`"
            raise ModelError(str(path), f"task is {task or 'not set'!r}, a classifier has task 'classify'", hint)
        inputs = self.session.get_inputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(shape) != 4 or inputs[0].type != "tensor(uint8)" or shape[3] != 3 or not isinstance(shape[1], int) or shape[1] != shape[2]:
            raise ModelError(str(path), f"input is {[(i.type, i.shape) for i in inputs]}, expected uint8 (N, S, S, 3)")
        names = _names(str(path), meta.get("names"))
        outputs = self.session.get_outputs()
        if len(outputs) != 1 or outputs[0].shape[-1] != len(names):
            raise ModelError(str(path), f"output {[o.shape for o in outputs]} does not match {len(names)} classes in 'names'")
        if expected_names is not None and names != expected_names:
            raise ModelError(
                str(path),
                f"classes {list(names)} are not the taxonomy's {list(expected_names)}",
                "use a classifier trained on this taxonomy",
            )
        self.input_name = inputs[0].name
        self.info = ClassifierInfo(str(path), names, int(shape[1]), file_sha256(path), meta)

    @property
    def names(self) -> tuple[str, ...]:
        """Class names in model order."""
        return self.info.names

    @property
    def imgsz(self) -> int:
        """Crop side, px."""
        return self.info.imgsz

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Class probabilities (N, C) for crops (N, S, S, 3) uint8 BGR; rows sum to 1."""
        if crops.ndim != 4 or crops.shape[1:] != (self.imgsz, self.imgsz, 3):
            raise ValueError(f"expected crops of shape (N, {self.imgsz}, {self.imgsz}, 3), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, len(self.names)), np.float32)
        out = np.asarray(self.session.run(None, {self.input_name: np.ascontiguousarray(crops)})[0], np.float32)
        return out

    def classify_boxes(
        self, frame: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32], turns: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.float32]:
        """Probabilities (N, C) for the boxes (N, 4) px of one BGR frame, in one batched call; ``turns`` (N,)
        turns each crop by that many quarter turns (counter-clockwise) first."""
        quarter_turns = turns.tolist() if turns is not None else [0] * len(xyxy)
        crops = (
            np.stack([np.rot90(crop_square(frame, box, self.imgsz), k) for box, k in zip(xyxy, quarter_turns, strict=True)])
            if len(xyxy)
            else np.zeros((0, self.imgsz, self.imgsz, 3), np.uint8)
        )
        return self.predict(crops)
