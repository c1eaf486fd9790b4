"""``farz train quantize``: static INT8 (QDQ) with ONNX Runtime, calibrated on training images.

Weights are quantized per channel (QInt8), activations per tensor (QUInt8). The first convolution (three
input channels) stays FP32: in INT8 it is slower, not faster. Nodes after the last
convolutions of the detect head (box decoding, score sigmoid, concatenation) stay FP32: they are cheap and
quantizing them costs most of the accuracy. The last convolutions themselves are INT8 by default (on the
shipped model: the same held-out mAP50 within 0.2 points, a lower count error on held-out videos);
``--head-convs fp32`` keeps them FP32. The function returns what it kept in FP32.

By default the quantized model then reads the letterboxed BGR frame itself, uint8 (1, H, W, 3), instead of
float RGB (1, 3, H, W): see ``training.input_layout`` (the same outputs to float rounding, less work per frame).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from training.input_layout import UINT8_BGR_NHWC, to_uint8_input
from training.metadata import put_metadata, read_metadata
from vision.geometry import letterbox, to_blob

QUANTIZED_OPS = [
    "Conv",
    "Relu",
    "Clip",
    "MatMul",
    "Add",
    "Mul",
    "Concat",
    "MaxPool",
    "Resize",
    "Sigmoid",
    "Split",
    "Slice",
    "Transpose",
    "Reshape",
]


class ImageCalibration(CalibrationDataReader):  # type: ignore[misc]
    """Feeds letterboxed images (1, 3, H, W float32 RGB 0..1) to the calibrator."""

    def __init__(self, images: list[Path], input_name: str, imgsz: tuple[int, int], stride: int = 0) -> None:
        self.input_name = input_name
        self._iter: Iterator[Path] = iter(images)
        self.imgsz = imgsz
        self.stride = stride  # > 0 for a dynamic-input model: calibrate on the shapes it will run at

    def get_next(self) -> dict[str, np.ndarray] | None:
        for path in self._iter:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                continue
            boxed, _ = letterbox(frame, self.imgsz, self.stride)
            return {self.input_name: to_blob(boxed)}
        return None


def head_tail_nodes(model: onnx.ModelProto, include_final_convs: bool = True) -> list[str]:
    """Quantizable nodes of the detect head (the last ``/model.N/`` module) outside its conv branches: box
    decoding, score sigmoid, reshapes and concats; with ``include_final_convs`` also each branch's last
    Conv, which produces the raw box and class logits. (Shape arithmetic is never quantized anyway.)"""
    names = [n.name for n in model.graph.node]
    modules = [int(m.group(1)) for m in (re.match(r"/model\.(\d+)/", n) for n in names) if m]
    if not modules:
        return []
    head = f"/model.{max(modules)}/"
    branch = re.compile(re.escape(head) + r"(one2one_)?cv\d\.\d+/")
    tail = []
    for node in model.graph.node:
        if not node.name.startswith(head):
            continue
        in_branch = branch.match(node.name) is not None
        final_conv = in_branch and node.op_type == "Conv" and not node.name.endswith("/conv/Conv")
        if (not in_branch or (include_final_convs and final_conv)) and node.op_type in QUANTIZED_OPS:
            tail.append(node.name)
    return tail


def first_conv_nodes(model: onnx.ModelProto) -> list[str]:
    """The convolution that reads the image, and its activation. With three input channels it is the one
    convolution that INT8 makes slower on x86 (ONNX Runtime's QLinearConv: 610 µs against 333 µs in FP32 at
    320×256 on the shipped model, ``bench/profile_nodes.py``), so it stays FP32 by default."""
    image = model.graph.input[0].name
    convs = [n for n in model.graph.node if image in n.input and n.op_type == "Conv"]
    acts = [n for c in convs for n in model.graph.node if c.output[0] in n.input and n.op_type in {"Relu", "Clip"}]
    return [n.name for n in convs + acts]


def attention_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes of the attention blocks (Ultralytics' PSA modules, ``…/attn/…``): their convs, matmuls,
    softmax and reshapes. Quantized, the tiny matmuls and softmax each need requantize steps and layout
    transposes that cost about what they save."""
    return [n.name for n in model.graph.node if "/attn/" in n.name]


def quantize(
    fp32: Path,
    out: Path,
    calibration_images: list[Path],
    method: str = "minmax",
    keep_fp32: list[str] | None = None,
    head_convs_fp32: bool = False,
    attention_fp32: bool = False,
    per_channel: bool = True,
    uint8_input: bool = True,
    first_conv_fp32: bool = True,
) -> list[str]:
    """Write a static INT8 QDQ copy of ``fp32`` to ``out``; returns the node names kept in FP32.

    ``keep_fp32`` names them explicitly; otherwise the detect head's decoding stays FP32, with
    ``head_convs_fp32`` also the last convolution of each head branch (the raw box and class logits), and
    with ``attention_fp32`` the attention blocks. Weights are quantized per output channel unless
    ``per_channel`` is False (one scale per tensor); with ``first_conv_fp32`` the convolution that reads the
    image stays FP32 (see ``first_conv_nodes``). With ``uint8_input`` the result reads uint8 BGR pixels
    (1, H, W, 3); else float RGB (1, 3, H, W) in 0..1 like the FP32 model.
    """
    if not calibration_images:
        raise FileNotFoundError("no calibration images: pass --calib with a folder of training images")
    meta = read_metadata(fp32)
    import ast

    imgsz_raw = ast.literal_eval(meta.get("imgsz", "[320, 320]"))
    imgsz = (int(imgsz_raw[0]), int(imgsz_raw[1])) if isinstance(imgsz_raw, (list, tuple)) else (int(imgsz_raw), int(imgsz_raw))
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        if keep_fp32 is not None:
            excluded = keep_fp32
        else:
            excluded = head_tail_nodes(model, include_final_convs=head_convs_fp32)
            excluded += (attention_nodes(model) if attention_fp32 else []) + (first_conv_nodes(model) if first_conv_fp32 else [])
        input_name = model.graph.input[0].name
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dynamic = any(not d.HasField("dim_value") for d in dims[2:])
        stride = int(meta.get("stride", "32")) if dynamic else 0
        methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
        quantize_static(
            str(pre),
            str(out),
            ImageCalibration(calibration_images, input_name, imgsz, stride),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=excluded,
            op_types_to_quantize=QUANTIZED_OPS,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    quantized = onnx.load(str(out))
    if uint8_input:
        quantized = to_uint8_input(quantized)
        meta["input"] = UINT8_BGR_NHWC
    meta["quantization"] = (
        f"static INT8 QDQ, per-{'channel' if per_channel else 'tensor'} weights, {method} calibration on {len(calibration_images)} images, "
        f"{len(excluded)} nodes FP32"
    )
    meta["farz_name"] = meta.get("farz_name", fp32.stem)
    put_metadata(quantized, meta)
    onnx.save(quantized, str(out))
    return excluded
