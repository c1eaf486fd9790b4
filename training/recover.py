"""``farz train recover``: a trainable PyTorch checkpoint rebuilt from an exported FP32 ONNX file.

Only ONNX files travel to devices and into the repository's history; a run folder's ``.pt`` may be gone.
Fine-tuning a shipped model (on a site's new data, or for more epochs on a GPU) needs PyTorch weights,
so this rebuilds them: the architecture from its definition, every convolution's weights from the ONNX
initializers of the same name. Export folds each BatchNorm into its convolution (``W·x + b``); the BatchNorm
is given back as the identity *on the data*: its running mean and variance are measured on calibration
images and its scale and shift chosen so that ``BN(W·x) = W·x + b`` exactly in eval mode and, with batch
statistics close to the measured ones, nearly so in training. The recovered model's outputs equal the
ONNX file's to float rounding (checked by :func:`recover` itself on the calibration images).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from training.offline import offline_ultralytics
from vision.geometry import letterbox, to_blob


class RecoverError(ValueError):
    """The ONNX file cannot be mapped onto the architecture; the message says which tensor and why."""


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` wrote and how closely the rebuilt model reproduces the ONNX file."""

    out: Path
    tensors: int  # ONNX initializers copied into the model
    head_copied: int  # one-to-one head tensors initialised from the exported one-to-many head
    max_abs_diff: float  # largest |ONNX − PyTorch| over the checked outputs
    max_abs_output: float  # largest |ONNX output| (box coordinates in px): the scale of that difference
    images: int


def _onnx_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise RecoverError(f"{path}: not a readable ONNX file ({exc})") from exc
    weights = {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}
    quantized = any(n.op_type in {"DequantizeLinear", "QLinearConv"} for n in model.graph.node)
    if quantized or any(t.data_type != onnx.TensorProto.FLOAT for t in model.graph.initializer if t.name.endswith(".weight")):
        raise RecoverError(f"{path}: weights are not FP32 — recover from the FP32 export, not the INT8 file")
    return weights, {p.key: p.value for p in model.metadata_props}


def _batches(images: Sequence[Path], imgsz: int, stride: int) -> list[np.ndarray]:
    blobs = []
    for path in images:
        frame = cv2.imread(str(path))
        if frame is None:
            raise RecoverError(f"{path}: not a readable image")
        boxed, _ = letterbox(frame, (imgsz, imgsz), stride)
        blobs.append(to_blob(boxed))
    return blobs


def recover(onnx_path: Path, architecture: str, calibration_images: Sequence[Path], out: Path, check_images: int = 8) -> Recovery:
    """Rebuild ``architecture`` (an Ultralytics model yaml) with ``onnx_path``'s weights; save an Ultralytics .pt.

    ``calibration_images``: training images (any size; letterboxed to the file's ``imgsz``) on which each
    BatchNorm's statistics are measured. The first ``check_images`` are also run through both models.
    """
    offline_ultralytics(out.parent)
    import torch
    from ultralytics import __version__
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import DetectionModel

    weights, meta = _onnx_weights(onnx_path)
    try:
        names = json.loads(meta["names"])
        imgsz = int(json.loads(meta.get("imgsz", "[320, 320]"))[0])
        stride = int(meta.get("stride", "32"))
    except (KeyError, ValueError) as exc:
        raise RecoverError(f"{onnx_path}: metadata lacks `names` or has a bad `imgsz` ({exc})") from exc
    if not calibration_images:
        raise RecoverError("no calibration images: pass --calib with a folder of training images")

    model = DetectionModel(architecture, nc=len(names), verbose=False)
    model.names = dict(enumerate(names))
    convs = {name: module for name, module in model.named_modules() if isinstance(module, Conv)}
    plain = {name: module for name, module in model.named_modules() if isinstance(module, torch.nn.Conv2d)}
    copied = 0
    with torch.no_grad():
        for name, array in weights.items():
            if not name.endswith(".weight"):
                continue
            stem = name.removesuffix(".weight")
            target = plain.get(stem)
            bias = weights.get(f"{stem}.bias")
            if target is None:
                continue
            if tuple(target.weight.shape) != array.shape:
                raise RecoverError(f"{onnx_path}: {name} has shape {list(array.shape)}, the architecture {list(target.weight.shape)}")
            target.weight.copy_(torch.from_numpy(array))
            owner = convs.get(stem.removesuffix(".conv")) if stem.endswith(".conv") else None
            if owner is not None and bias is not None:
                bn = owner.bn
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(bias))
            elif bias is not None and target.bias is not None:
                target.bias.copy_(torch.from_numpy(bias))
            copied += 1 + (bias is not None)
        exported = {f"{stem}.weight" for stem in plain} & set(weights)
        missing = [stem for stem in plain if f"{stem}.weight" not in exported and ".one2one_" not in stem]
        if missing:
            raise RecoverError(f"{onnx_path}: no weights for {len(missing)} convolutions of {architecture} (first: {missing[0]})")
        head_copied = _copy_one2one_head(model)

    blobs = _batches(calibration_images, imgsz, stride)
    _measure_batchnorms(model, convs, blobs)
    max_diff, scale = _compare(onnx_path, model, blobs[:check_images])

    model.args = {"imgsz": imgsz, "task": "detect"}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "epoch": -1,
            "best_fitness": None,
            "model": None,
            "ema": model,  # FP32: the folded statistics lose ~0.5 px of box precision in half precision
            "updates": 0,
            "optimizer": None,
            "train_args": {"model": architecture, "imgsz": imgsz, "task": "detect"},
            "date": datetime.now(UTC).isoformat(),
            "version": __version__,
            "recovered_from": str(onnx_path),
        },
        out,
    )
    return Recovery(out=out, tensors=copied, head_copied=head_copied, max_abs_diff=max_diff, max_abs_output=scale, images=len(blobs))


def _copy_one2one_head(model: object) -> int:
    """YOLO26's one-to-one head is not exported; start it as a copy of the one-to-many head it mirrors."""
    head = model.model[-1]  # type: ignore[attr-defined]
    copied = 0
    for twin, source in (("one2one_cv2", "cv2"), ("one2one_cv3", "cv3")):
        if hasattr(head, twin):
            getattr(head, twin).load_state_dict(getattr(head, source).state_dict())
            copied += sum(1 for _ in getattr(head, source).state_dict())
    return copied


def _measure_batchnorms(model: object, convs: dict[str, object], blobs: list[np.ndarray]) -> None:
    """Set every Conv's BatchNorm to the identity-plus-bias on these images (see the module docstring)."""
    import torch

    sums: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name, module in convs.items():

        def hook(_m: object, inputs: tuple[torch.Tensor], _out: object, key: str = name) -> None:
            y = inputs[0].double()  # the BatchNorm's input: the bias-free convolution output
            zeros = torch.zeros(y.shape[1], dtype=torch.float64)
            s = sums.setdefault(key, [zeros, zeros.clone(), torch.zeros((), dtype=torch.float64)])
            s[0] += y.sum(dim=(0, 2, 3))
            s[1] += (y * y).sum(dim=(0, 2, 3))
            s[2] += y.shape[0] * y.shape[2] * y.shape[3]

        hooks.append(module.bn.register_forward_hook(hook))  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        for blob in blobs:
            model(torch.from_numpy(blob))  # type: ignore[operator]
    for handle in hooks:
        handle.remove()
    with torch.no_grad():
        for name, module in convs.items():
            total, squares, count = sums[name]
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(0.0)
            bn = module.bn  # type: ignore[attr-defined]
            bias = bn.bias.double().clone()  # the folded bias b, set above
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((mean + bias).float())


def _compare(onnx_path: Path, model: object, blobs: list[np.ndarray]) -> tuple[float, float]:
    """Largest absolute difference between the ONNX file's and the rebuilt model's raw outputs, and the largest output."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    head = model.model[-1]  # type: ignore[attr-defined]
    worst = scale = 0.0
    model.eval()  # type: ignore[attr-defined]
    saved = getattr(head, "export", False), getattr(head, "format", None)
    head.export, head.format = True, "onnx"
    try:
        with torch.no_grad():
            for blob in blobs:
                expected = session.run(None, {input_name: blob})[0]
                got = model(torch.from_numpy(blob))  # type: ignore[operator]
                got = got[0] if isinstance(got, (tuple, list)) else got
                got = got["one2many"] if isinstance(got, dict) else got
                array = got.float().numpy()
                if array.shape != expected.shape:
                    raise RecoverError(f"rebuilt model outputs {array.shape}, {onnx_path} {expected.shape}: wrong architecture?")
                worst = max(worst, float(np.abs(array - expected).max()))
                scale = max(scale, float(np.abs(expected).max()))
    finally:
        head.export, head.format = saved
    return worst, scale
